"""regcourse: the companion package of the course *Regularization for deep networks*.

Every number printed in the course's chapters is computed by this package. Each
module holds one idea; see the chapter named in a function's docstring.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__version__ = "0.2.0"

from ._checks import set_validate_args, validate_args_enabled

__all__ = ["__version__", "setup", "set_validate_args", "validate_args_enabled"]


def setup(version: str, *, seed: int = 0, threads: int | None = None) -> None:
    """Prepare a notebook: check the package version, fix threads and seeds.

    Every chapter's first cell calls this, so that a chapter run with another
    version of the package fails loudly instead of printing different numbers.

    Args:
        version (str): the ``regcourse`` version the chapter was written for.
        seed (int): seed for ``torch``, ``numpy`` and ``random``. Default: ``0``.
        threads (int, optional): number of CPU threads for torch. Default: the
            ``REGCOURSE_NUM_THREADS`` environment variable, else ``1``. The
            chapters' outputs are the same with 1 or 2 threads; the tests check it.

    Raises:
        VersionMismatchError: (a ``RuntimeError``) if ``version`` is not the installed
            version. Its message names the wheel to install, and in a notebook it prints
            as one line instead of a traceback.
    """
    from ._checks import check_scalar
    from .errors import VersionMismatchError

    if not isinstance(version, str):
        raise TypeError(f"version must be a str, got {type(version).__name__}")
    if version != __version__:
        raise VersionMismatchError(
            f"this notebook was written for regcourse {version}, but regcourse {__version__} "
            f"is installed; run: pip install regcourse-{version}-py3-none-any.whl (the wheel "
            "offered beside each chapter of the site)"
        )
    seed = check_scalar(seed, "seed", kind="int", low=0)
    if threads is None:
        threads = os.environ.get("REGCOURSE_NUM_THREADS", "1")
        try:
            threads = int(threads)
        except ValueError:
            raise ValueError(f"REGCOURSE_NUM_THREADS must be an integer, got {threads!r}") from None
    threads = check_scalar(threads, "threads", kind="int", low=1)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    torch.use_deterministic_algorithms(True)
    # Figures: a fixed look, PNG output (nbval compares SVG but skips PNG).
    try:
        import matplotlib

        matplotlib.rcParams.update(
            {"figure.dpi": 100, "savefig.dpi": 100, "figure.figsize": (6, 3.5)}
        )
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        pass
    print(f"regcourse {__version__} ready: torch {torch.__version__.split('+')[0]}, seed {seed}")
