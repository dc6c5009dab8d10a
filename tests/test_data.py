"""Tests of regcourse.data.mnist1d_split: the benchmark's split, offline, RNG-neutral, cached
(in memory and on disk)."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

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

    @pytest.mark.parametrize("disk_cache", ["off", "hit"])
    def test_global_rng_untouched(self, disk_cache, tmp_path, monkeypatch):
        folder = "" if disk_cache == "off" else str(tmp_path)
        monkeypatch.setenv("REGCOURSE_CACHE_DIR", folder)
        if disk_cache == "hit":
            D._mnist1d_arrays.cache_clear()
            mnist1d_split()  # writes the file the next call reads
            assert len(list(tmp_path.glob("*.npz"))) == 1
        D._mnist1d_arrays.cache_clear()  # force a real generation or a read from disk
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


def _reference_arrays(reference):
    return (
        np.asarray(reference["x"], dtype=np.float32),
        np.asarray(reference["y"], dtype=np.int64),
        np.asarray(reference["x_test"], dtype=np.float32),
        np.asarray(reference["y_test"], dtype=np.int64),
    )


def _assert_bitwise_equal(arrays, expected):
    assert len(arrays) == len(expected) == 4
    for a, b in zip(arrays, expected, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()


class TestDiskCache:
    """The ``.npz`` cache of the generated arrays (``REGCOURSE_CACHE_DIR``)."""

    @pytest.fixture
    def folder(self, tmp_path, monkeypatch):
        folder = tmp_path / "cache"
        monkeypatch.setenv("REGCOURSE_CACHE_DIR", str(folder))
        D._mnist1d_arrays.cache_clear()
        yield folder
        D._mnist1d_arrays.cache_clear()

    @pytest.fixture
    def generations(self, monkeypatch, reference):
        """Counts the generator's calls. It returns (copies of) what the real generator
        returned for the module's ``reference`` fixture, so a test need not pay ~1.5 s per
        generation; ``test_hit_equals_fresh_generation_bit_for_bit`` uses the real one."""
        calls = []

        def counting():
            calls.append(1)
            return tuple(a.copy() for a in _reference_arrays(reference)), dict(D._MNIST1D_ARGS)

        monkeypatch.setattr(D, "_generate_mnist1d", counting)
        return calls

    def _fresh(self):
        D._mnist1d_arrays.cache_clear()
        return D._mnist1d_arrays()

    def test_first_call_writes_one_file(self, folder, generations):
        assert not folder.exists()
        self._fresh()
        files = list(folder.iterdir())
        assert len(files) == 1 and files[0].suffix == ".npz" and len(generations) == 1

    def test_hit_equals_fresh_generation_bit_for_bit(self, folder, monkeypatch, reference):
        real, calls = D._generate_mnist1d, []
        monkeypatch.setattr(D, "_generate_mnist1d", lambda: calls.append(1) or real())
        self._fresh()
        hit = self._fresh()
        assert len(calls) == 1  # the second call read the file
        _assert_bitwise_equal(hit, _reference_arrays(reference))
        generated, _ = real()
        _assert_bitwise_equal(hit, generated)

    def test_split_from_disk_equals_split_from_generator(self, folder, monkeypatch):
        monkeypatch.setenv("REGCOURSE_CACHE_DIR", "")
        D._mnist1d_arrays.cache_clear()
        generated = mnist1d_split(500, layout="ncl", label_noise=0.1, seed=3)
        monkeypatch.setenv("REGCOURSE_CACHE_DIR", str(folder))
        self._fresh()  # writes
        D._mnist1d_arrays.cache_clear()
        from_disk = mnist1d_split(500, layout="ncl", label_noise=0.1, seed=3)
        assert list(folder.glob("*.npz"))
        for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            assert torch.equal(getattr(from_disk, name), getattr(generated, name)), name

    def _cache_file(self, folder) -> Path:
        (path,) = folder.glob("*.npz")
        return path

    def _rewrite(self, path, **changes):
        with np.load(path, allow_pickle=False) as f:
            content = {name: f[name] for name in f.files}
        content.update(changes)
        with open(path, "wb") as f:
            np.savez(f, **content)

    @pytest.mark.parametrize(
        "damage",
        [
            "truncated",
            "empty",
            "garbage",
            "changed value, old checksum",
            "wrong shape, its own checksum",
            "wrong dtype, its own checksum",
            "other key",
            "missing array",
            "pickled object array",
            "a folder",
        ],
    )
    def test_damaged_file_regenerates(self, folder, generations, reference, damage):
        self._fresh()
        path = self._cache_file(folder)
        raw = path.read_bytes()
        with np.load(path, allow_pickle=False) as f:
            x, y, x_test, y_test = (f[n] for n in ("x", "y", "x_test", "y_test"))
        if damage == "truncated":
            path.write_bytes(raw[: len(raw) // 2])
        elif damage == "empty":
            path.write_bytes(b"")
        elif damage == "garbage":
            path.write_bytes(os.urandom(len(raw)))
        elif damage == "changed value, old checksum":
            x = x.copy()
            x[17, 3] += 1.0
            self._rewrite(path, x=x)
        elif damage == "wrong shape, its own checksum":
            arrays = (x[:-1], y[:-1], x_test, y_test)
            self._rewrite(path, x=arrays[0], y=arrays[1], checksum=np.array(D._checksum(arrays)))
        elif damage == "wrong dtype, its own checksum":
            arrays = (x.astype(np.float64), y, x_test, y_test)
            self._rewrite(path, x=arrays[0], checksum=np.array(D._checksum(arrays)))
        elif damage == "other key":
            self._rewrite(path, key=np.array("another key"))
        elif damage == "missing array":
            with np.load(path, allow_pickle=False) as f:
                content = {n: f[n] for n in f.files if n != "y_test"}
            with open(path, "wb") as f:
                np.savez(f, **content)
        elif damage == "pickled object array":
            self._rewrite(path, x=np.array([object()] * 3, dtype=object))
        elif damage == "a folder":
            path.unlink()
            path.mkdir()
        arrays = self._fresh()
        assert len(generations) == 2
        _assert_bitwise_equal(arrays, _reference_arrays(reference))
        if damage != "a folder":  # the damaged file was replaced by a good one
            self._fresh()
            assert len(generations) == 2

    def test_folder_under_a_file_works(self, tmp_path, monkeypatch, reference, generations):
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("x")
        monkeypatch.setenv("REGCOURSE_CACHE_DIR", str(blocker / "cache"))
        arrays = self._fresh()
        _assert_bitwise_equal(arrays, _reference_arrays(reference))
        assert blocker.read_text() == "x"

    @pytest.mark.parametrize("fails", ["mkstemp", "replace"])
    def test_unwritable_folder_works(self, folder, monkeypatch, reference, generations, fails):
        """A read-only home (the grader's sandbox): the write fails, nothing is left behind."""

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied (read-only file system)")

        target = D.tempfile if fails == "mkstemp" else D.os
        monkeypatch.setattr(target, fails, refuse)
        arrays = self._fresh()
        _assert_bitwise_equal(arrays, _reference_arrays(reference))
        assert list(folder.iterdir()) == []

    @pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes to read-only folders"
    )
    def test_read_only_folder_works(self, folder, reference, generations):
        folder.mkdir()
        folder.chmod(0o500)
        try:
            arrays = self._fresh()
        finally:
            folder.chmod(0o700)
        _assert_bitwise_equal(arrays, _reference_arrays(reference))
        assert list(folder.iterdir()) == []

    def test_read_only_file_is_read(self, folder, generations):
        """A cache filled earlier and then mounted read-only still serves hits."""
        self._fresh()
        path = self._cache_file(folder)
        path.chmod(0o444)
        self._fresh()
        assert len(generations) == 1

    def test_disabled_by_empty_variable(self, tmp_path, monkeypatch, generations):
        monkeypatch.setenv("REGCOURSE_CACHE_DIR", "")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        assert D._cache_dir() is None
        self._fresh()
        self._fresh()
        assert len(generations) == 2
        assert list(tmp_path.iterdir()) == []
        D._mnist1d_arrays.cache_clear()

    def test_default_folders(self, tmp_path, monkeypatch):
        monkeypatch.delenv("REGCOURSE_CACHE_DIR", raising=False)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert D._cache_dir() == tmp_path / "xdg" / "regcourse"
        monkeypatch.delenv("XDG_CACHE_HOME")
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        assert D._cache_dir() == tmp_path / "home" / ".cache" / "regcourse"
        monkeypatch.setenv("REGCOURSE_CACHE_DIR", str(tmp_path / "mine"))
        assert D._cache_dir() == tmp_path / "mine"

    def test_arguments_are_mnist1d_defaults(self):
        from mnist1d.data import get_dataset_args

        defaults = get_dataset_args(as_dict=True)
        defaults.pop("url")
        assert D._MNIST1D_ARGS == defaults

    def test_other_generator_arguments_are_not_cached(self, folder, monkeypatch, generations):
        """If mnist1d's defaults ever differ from the arguments the key names, the generated
        arrays are returned but not stored under a key that does not describe them."""
        real = D._generate_mnist1d

        def other_defaults():
            arrays, used = real()
            return arrays, {**used, "seed": 43}

        monkeypatch.setattr(D, "_generate_mnist1d", other_defaults)
        self._fresh()
        assert not folder.exists() or list(folder.iterdir()) == []

    @pytest.mark.parametrize("name", sorted(D._MNIST1D_ARGS))
    def test_key_changes_with_each_argument(self, name):
        base = D._cache_key(D._MNIST1D_ARGS, "0.0.2.post1", "2.4.6")
        value = D._MNIST1D_ARGS[name]
        if isinstance(value, bool):
            other = not value
        elif isinstance(value, list):
            other = [v + 1 for v in value]
        else:
            other = value * 2 + 1
        changed = D._cache_key({**D._MNIST1D_ARGS, name: other}, "0.0.2.post1", "2.4.6")
        assert changed != base
        folder = Path("/nowhere")
        assert D._cache_path(folder, changed) != D._cache_path(folder, base)

    def test_key_changes_with_versions_and_format(self, monkeypatch):
        args = D._MNIST1D_ARGS
        base = D._cache_key(args, "0.0.2.post1", "2.4.6")
        assert D._cache_key(args, "0.0.3", "2.4.6") != base
        assert D._cache_key(args, "0.0.2.post1", "3.0.0") != base
        assert D._cache_key(args, "0.0.2.post1", "2.3.1") == base  # numpy's major version only
        monkeypatch.setattr(D, "_CACHE_FORMAT", D._CACHE_FORMAT + 1)
        assert D._cache_key(args, "0.0.2.post1", "2.4.6") != base

    def test_file_written_is_not_pickled(self, folder, generations):
        self._fresh()
        with np.load(self._cache_file(folder), allow_pickle=False) as f:
            assert sorted(f.files) == ["checksum", "key", "x", "x_test", "y", "y_test"]
            assert all(f[n].dtype != object for n in f.files)


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
