"""Tests of regcourse.setup (the chapters' first cell), the one-line errors and the value-scan switch."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import regcourse
from regcourse import set_validate_args, validate_args_enabled
from regcourse.errors import MissingDependencyError, VersionMismatchError


@pytest.fixture
def restore_torch_state():
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(det)


class TestSetup:
    def test_wrong_version_names_the_wheel(self):
        with pytest.raises(
            VersionMismatchError, match=r"pip install regcourse-0\.0\.9-py3-none-any\.whl"
        ):
            regcourse.setup("0.0.9")

    def test_wrong_version_is_a_runtime_error(self):
        with pytest.raises(RuntimeError, match=rf"regcourse {regcourse.__version__} is installed"):
            regcourse.setup("9.9.9")

    def test_wrong_version_renders_as_one_line(self):
        with pytest.raises(VersionMismatchError) as info:
            regcourse.setup("0.0.9")
        lines = info.value._render_traceback_()
        assert len(lines) == 1 and "\n" not in lines[0]
        assert lines[0].startswith(
            "VersionMismatchError: this notebook was written for regcourse 0.0.9"
        )

    def test_version_must_be_a_string(self):
        with pytest.raises(TypeError, match=r"version must be a str, got float"):
            regcourse.setup(0.1)

    def test_right_version_seeds_everything(self, capsys, restore_torch_state):
        regcourse.setup(regcourse.__version__, seed=3, threads=1)
        a = (torch.rand(2), np.random.rand(2), random.random())
        regcourse.setup(regcourse.__version__, seed=3, threads=1)
        b = (torch.rand(2), np.random.rand(2), random.random())
        assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
        assert torch.get_num_threads() == 1
        assert f"regcourse {regcourse.__version__} ready" in capsys.readouterr().out

    @pytest.mark.parametrize(
        "kwargs, exc, match",
        [
            (dict(seed=-1), ValueError, r"seed must be >= 0"),
            (dict(threads=0), ValueError, r"threads must be >= 1"),
            (dict(threads="2"), TypeError, r"threads must be an integer"),
        ],
    )
    def test_bad_input(self, kwargs, exc, match):
        with pytest.raises(exc, match=match):
            regcourse.setup(regcourse.__version__, **kwargs)

    def test_bad_thread_variable(self, monkeypatch):
        monkeypatch.setenv("REGCOURSE_NUM_THREADS", "two")
        with pytest.raises(
            ValueError, match=r"REGCOURSE_NUM_THREADS must be an integer, got 'two'"
        ):
            regcourse.setup(regcourse.__version__)


class TestOneLineErrors:
    def test_missing_dependency_is_an_import_error(self):
        err = MissingDependencyError("mnist1d", "pip install mnist1d==0.0.2.post1")
        assert isinstance(err, ImportError) and err.name == "mnist1d"
        assert str(err) == "mnist1d is not installed; run: pip install mnist1d==0.0.2.post1"

    @pytest.mark.parametrize(
        "code, line",
        [
            (
                "from regcourse.errors import MissingDependencyError as E\n"
                "raise E('mnist1d', 'pip install mnist1d==0.0.2.post1')",
                "MissingDependencyError: mnist1d is not installed; run: pip install mnist1d==0.0.2.post1",
            ),
            (
                "import regcourse\nregcourse.setup('0.0.9')",
                "VersionMismatchError: this notebook was written for regcourse 0.0.9",
            ),
        ],
    )
    def test_ipython_prints_one_line(self, code, line):
        """What a notebook shows: IPython calls _render_traceback_, so no traceback appears."""
        pytest.importorskip("IPython")
        from IPython.core.interactiveshell import InteractiveShell
        from IPython.utils.capture import capture_output

        shell = InteractiveShell.instance()
        with capture_output() as cap:
            result = shell.run_cell(code)
        assert not result.success
        out = cap.stdout.strip().splitlines()
        assert len(out) == 1 and out[0].startswith(line), cap.stdout
        assert "Traceback" not in cap.stdout + cap.stderr


class TestValidateArgs:
    def test_default_on(self):
        assert validate_args_enabled() is True

    def test_switch_returns_the_old_value(self):
        old = set_validate_args(False)
        try:
            assert old is True and validate_args_enabled() is False
        finally:
            set_validate_args(old)
        assert validate_args_enabled() is True

    def test_off_skips_the_finite_scan(self):
        from regcourse.dropout import dropout

        x = torch.tensor([float("nan"), 1.0])
        with pytest.raises(ValueError, match=r"x must be finite"):
            dropout(x, 0.5)
        old = set_validate_args(False)
        try:
            dropout(x, 0.5)  # no scan: NaN passes through, as in torch
        finally:
            set_validate_args(old)

    def test_off_keeps_the_cheap_checks(self):
        from regcourse.dropout import dropout

        old = set_validate_args(False)
        try:
            with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
                dropout(torch.ones(2), 1.5)
        finally:
            set_validate_args(old)

    def test_layers_do_not_scan_values(self):
        """A layer's forward skips the scans (as torch's layers do); its function keeps them."""
        from regcourse.dropout import Dropout, dropout
        from regcourse.normalization import BatchNorm1d

        x = torch.tensor([[float("nan"), 1.0], [2.0, 3.0]])
        with pytest.raises(ValueError, match=r"x must be finite"):
            dropout(x, 0.5)
        assert torch.isnan(Dropout(0.5).eval()(x)).any()  # passed through, like nn.Dropout
        assert torch.isnan(BatchNorm1d(2)(x)).any()  # like nn.BatchNorm1d
        assert validate_args_enabled() is True  # restored after the forward

    def test_scans_restored_after_a_failing_forward(self):
        from regcourse.normalization import BatchNorm1d

        with pytest.raises(ValueError, match=r"x must have 3 channels"):
            BatchNorm1d(3)(torch.randn(4, 2))
        assert validate_args_enabled() is True

    def test_needs_a_bool(self):
        with pytest.raises(TypeError, match=r"value must be a bool, got 'off'"):
            set_validate_args("off")
