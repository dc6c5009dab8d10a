"""Tests of regcourse.data.mnist1d_split: the benchmark's split, offline, RNG-neutral, cached."""

from __future__ import annotations

import random
import sys

import numpy as np
import pytest
import torch

from regcourse import data as D
from regcourse.data import MNIST1D_PUBLISHED, mnist1d_split
from regcourse.errors import MissingDependencyError


@pytest.fixture(scope="module")
def reference():
    """``make_dataset()`` called directly, as the benchmark's own code does (global RNG restored)."""
    from mnist1d.data import get_dataset_args, make_dataset

    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        return make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


class TestMnist1dSplit:
    def test_sizes_and_dtypes(self):
        s = mnist1d_split()
        assert s.x_train.shape == (4000, 40) and s.x_test.shape == (1000, 40)
        assert s.x_val.shape == (0, 40) and s.y_val.shape == (0,)
        assert s.x_train.dtype == torch.float32 and s.y_train.dtype == torch.int64
        assert s.num_classes == 10
        assert set(s.y_train.tolist()) == set(range(10))

    def test_equals_make_dataset(self, reference):
        s = mnist1d_split()
        torch.testing.assert_close(s.x_train, torch.tensor(reference["x"], dtype=torch.float32))
        torch.testing.assert_close(s.x_test, torch.tensor(reference["x_test"], dtype=torch.float32))
        assert torch.equal(s.y_train, torch.tensor(reference["y"]))
        assert torch.equal(s.y_test, torch.tensor(reference["y_test"]))

    def test_global_rng_untouched(self):
        D._mnist1d_arrays.cache_clear()  # force a real generation
        np.random.seed(123)
        random.seed(123)
        expected_np, expected_py = np.random.rand(3), [random.random() for _ in range(3)]
        np.random.seed(123)
        random.seed(123)
        mnist1d_split()
        assert np.array_equal(np.random.rand(3), expected_np)
        assert [random.random() for _ in range(3)] == expected_py

    def test_cached_and_copies(self):
        mnist1d_split()
        hits = D._mnist1d_arrays.cache_info().hits
        a = mnist1d_split()
        assert D._mnist1d_arrays.cache_info().hits == hits + 1
        a.x_train.zero_()
        a.y_train.zero_()
        b = mnist1d_split()
        assert b.x_train.abs().sum() > 0 and b.y_train.sum() > 0

    def test_ncl_layout(self):
        flat, ncl = mnist1d_split(300), mnist1d_split(300, layout="ncl")
        for name in ("x_train", "x_val", "x_test"):
            assert getattr(ncl, name).shape == (len(getattr(flat, name)), 1, 40)
            assert torch.equal(getattr(ncl, name)[:, 0], getattr(flat, name))

    def test_validation_carved_from_train(self):
        full, s = mnist1d_split(), mnist1d_split(500, seed=3)
        assert len(s.y_val) == 500 and len(s.y_train) == 3500
        assert torch.equal(s.x_test, full.x_test)
        rows = {tuple(r) for r in full.x_train.tolist()}
        train_rows = {tuple(r) for r in s.x_train.tolist()}
        val_rows = {tuple(r) for r in s.x_val.tolist()}
        assert not train_rows & val_rows
        assert train_rows | val_rows == rows

    def test_validation_seeded(self):
        a, b, c = mnist1d_split(200, seed=1), mnist1d_split(200, seed=1), mnist1d_split(200, seed=2)
        assert torch.equal(a.x_val, b.x_val) and torch.equal(a.y_val, b.y_val)
        assert not torch.equal(a.x_val, c.x_val)

    def test_label_noise_fraction(self):
        clean, noisy = mnist1d_split(), mnist1d_split(label_noise=0.2, seed=5)
        frac = (clean.y_train != noisy.y_train).float().mean().item()
        se = (0.2 * 0.8 / 4000) ** 0.5
        assert abs(frac - 0.2) < 5 * se
        assert torch.equal(clean.y_test, noisy.y_test)

    def test_random_labels(self):
        clean, rnd = mnist1d_split(), mnist1d_split(random_labels=True, seed=5)
        agree = (clean.y_train == rnd.y_train).float().mean().item()
        assert abs(agree - 0.1) < 5 * (0.1 * 0.9 / 4000) ** 0.5
        counts = torch.bincount(rnd.y_train, minlength=10)
        assert counts.min() > 0

    def test_published_reference(self):
        assert MNIST1D_PUBLISHED == {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94}

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            (dict(n_val=-1), ValueError, r"n_val must be in \[0, 3990\], got -1"),
            (dict(n_val=3995), ValueError, r"n_val"),
            (dict(n_val=1.5), TypeError, r"n_val must be an integer"),
            (dict(layout="nlc"), ValueError, r"layout must be one of \['flat', 'ncl'\], got 'nlc'"),
            (dict(label_noise=1.0), ValueError, r"label_noise"),
            (dict(random_labels="yes"), TypeError, r"random_labels must be a bool, got 'yes'"),
            (dict(seed=-2), ValueError, r"seed must be >= 0"),
        ],
    )
    def test_bad_input(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            mnist1d_split(**kwargs)

    def test_numpy_scalars_accepted(self):
        s = mnist1d_split(np.int64(100), seed=np.int64(1), label_noise=np.float32(0.0))
        assert len(s.y_val) == 100


class TestMissingDependency:
    def test_mnist1d_missing(self, monkeypatch):
        D._mnist1d_arrays.cache_clear()
        monkeypatch.setitem(sys.modules, "mnist1d", None)
        monkeypatch.setitem(sys.modules, "mnist1d.data", None)
        try:
            with pytest.raises(
                MissingDependencyError, match=r"pip install mnist1d==0\.0\.2\.post1"
            ) as info:
                mnist1d_split()
        finally:
            D._mnist1d_arrays.cache_clear()
        assert isinstance(info.value, ImportError)
        lines = info.value._render_traceback_()
        assert len(lines) == 1 and "\n" not in lines[0]
        assert lines[0].startswith("MissingDependencyError: mnist1d is not installed")

    def test_sklearn_missing(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "sklearn", None)
        monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
        with pytest.raises(MissingDependencyError, match=r"pip install scikit-learn"):
            D.digits_split()
