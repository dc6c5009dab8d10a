"""Shared test settings: one torch thread (fast and deterministic on the 2-core CI machine),
and every matplotlib figure closed after each test (experiments draw one per run)."""

import matplotlib.pyplot as plt
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")
