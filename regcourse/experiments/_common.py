"""Helpers shared by the chapters' experiments.

Training results must not depend on the number of CPU threads: the book's outputs are
checked with 1 and with 2 torch threads (``make test``), and a matrix product split over
two threads sums in another order, so after thousands of steps the weights differ in
the last digits and an accuracy may move by one example. The experiments therefore
train inside :func:`one_thread`; the small networks of the course gain little from a
second thread anyway (measured in ``make bench``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["one_thread"]


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with one torch thread, then restore the previous number.

    Example:
        >>> before = torch.get_num_threads()
        >>> with one_thread():
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
