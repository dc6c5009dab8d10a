"""Shared test settings: one torch thread (fast and deterministic on the 2-core CI machine)."""

import torch

torch.set_num_threads(1)
