"""Tests of the shared experiment infrastructure: regcourse.data, regcourse.models,
regcourse.training. One class per function, one behaviour per test; bad inputs tabled.

The data tests recover the raw pixels from the standardised tensors (the pixels of
scikit-learn's digits are the integers 0..16), so that the split can be checked against
the data set itself: a partition of it, standardised with the training set's statistics.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from regcourse.data import Split, digits_split, sample_photo
from regcourse.dropout import Dropout
from regcourse.models import MLP, SmallCNN, build_model
from regcourse.training import (
    History,
    batch_indices,
    evaluate,
    make_optimizer,
    minibatches,
    seeded,
    train,
    train_epoch,
)

N_DIGITS = 1797


@pytest.fixture(scope="module")
def raw_digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return torch.from_numpy(d.images).to(torch.int64), torch.from_numpy(d.target).to(torch.int64)


def _recover_raw(split: Split) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Invert the standardisation: the smallest training value is pixel 0 and the largest is
    pixel 16, so two numbers fix the affine map back to the integers 0..16."""
    lo, hi = split.x_train.min().double(), split.x_train.max().double()
    back = [
        ((x.double() - lo) / (hi - lo) * 16) for x in (split.x_train, split.x_val, split.x_test)
    ]
    return tuple(back)


def _image_label_multiset(images: torch.Tensor, labels: torch.Tensor) -> Counter:
    pixels = images.round().to(torch.int64)
    return Counter((tuple(img.reshape(-1).tolist()), int(lab)) for img, lab in zip(pixels, labels))


def _tiny_data(n_train=40, n_val=20, seed=0, label_noise=0.0):
    return digits_split(n_train, n_val, label_noise=label_noise, seed=seed)


def _tiny_model(seed=0, dropout=0.0, hidden=16):
    return build_model("mlp", seed=seed, hidden=hidden, depth=1, dropout=dropout)


# ---------------------------------------------------------------------------- data


class TestDigitsSplit:
    def test_shapes(self):
        s = digits_split(120, 80, seed=3)
        assert s.x_train.shape == (120, 1, 8, 8)
        assert s.x_val.shape == (80, 1, 8, 8)
        assert s.x_test.shape == (N_DIGITS - 200, 1, 8, 8)
        assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (120, 80, N_DIGITS - 200)
        assert s.num_classes == 10

    def test_dtypes(self):
        s = digits_split(50, 50)
        for x in (s.x_train, s.x_val, s.x_test):
            assert x.dtype == torch.float32
        for y in (s.y_train, s.y_val, s.y_test):
            assert y.dtype == torch.int64

    def test_labels_are_classes(self):
        s = digits_split(300, 300)
        for y in (s.y_train, s.y_val, s.y_test):
            assert int(y.min()) >= 0 and int(y.max()) <= 9
        assert len(torch.unique(s.y_train)) == 10

    def test_repr_names_the_sizes(self):
        assert repr(digits_split(50, 30)) == (
            f"Split(train=50, val=30, test={N_DIGITS - 80}, input=(1, 8, 8), classes=10)"
        )

    def test_splits_partition_the_data_set(self, raw_digits):
        """Train + val + test hold every (image, label) of the data set exactly once: nothing
        lost, nothing in two splits."""
        images, labels = raw_digits
        s = digits_split(200, 150, seed=5)
        xs = _recover_raw(s)
        for x in xs:  # each recovered pixel is an integer 0..16
            assert torch.allclose(x, x.round(), atol=1e-3)
        got = Counter()
        for x, y in zip(xs, (s.y_train, s.y_val, s.y_test)):
            got += _image_label_multiset(x, y)
        assert got == _image_label_multiset(images.double(), labels)

    def test_train_is_standardised_with_its_own_statistics(self):
        s = digits_split(300, 300, seed=2)
        assert abs(s.x_train.double().mean().item()) < 1e-5
        assert abs(s.x_train.double().std().item() - 1) < 1e-5

    def test_val_and_test_use_the_train_statistics(self, raw_digits):
        """Undo the train standardisation: val and test land exactly on pixel values /16,
        so they were transformed with the training mean and std, not their own."""
        s = digits_split(100, 100, seed=4)
        raw_train, raw_val, raw_test = _recover_raw(s)
        mean, std = (raw_train / 16).mean(), (raw_train / 16).std()
        for x, raw in ((s.x_val, raw_val), (s.x_test, raw_test)):
            assert torch.allclose(raw, raw.round(), atol=1e-3)
            assert torch.allclose(x.double(), (raw.round() / 16 - mean) / std, atol=1e-5)
        assert abs(s.x_val.double().mean().item()) > 1e-4  # not re-centred on itself

    def test_statistics_do_not_depend_on_val_or_test(self):
        a, b = digits_split(150, 50, seed=9), digits_split(150, 400, seed=9)
        assert torch.equal(a.x_train, b.x_train)
        assert torch.equal(a.x_val, b.x_val[:50])

    def test_same_seed_same_split(self):
        a, b = (
            digits_split(100, 50, label_noise=0.2, seed=7),
            digits_split(100, 50, label_noise=0.2, seed=7),
        )
        for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            assert torch.equal(getattr(a, name), getattr(b, name))

    def test_different_seed_different_split(self):
        a, b = digits_split(100, 50, seed=0), digits_split(100, 50, seed=1)
        assert not torch.equal(a.x_train, b.x_train)

    def test_label_noise_fraction(self):
        n, noise = 1200, 0.3
        clean, noisy = (
            digits_split(n, 100, seed=11),
            digits_split(n, 100, label_noise=noise, seed=11),
        )
        frac = (clean.y_train != noisy.y_train).double().mean().item()
        assert abs(frac - noise) < 5 * math.sqrt(noise * (1 - noise) / n)

    def test_label_noise_changes_only_training_labels(self):
        clean, noisy = (
            digits_split(200, 100, seed=3),
            digits_split(200, 100, label_noise=0.5, seed=3),
        )
        assert torch.equal(clean.x_train, noisy.x_train)
        assert torch.equal(clean.y_val, noisy.y_val)
        assert torch.equal(clean.y_test, noisy.y_test)
        flipped = clean.y_train != noisy.y_train
        assert int(flipped.sum()) > 0
        assert int(noisy.y_train.min()) >= 0 and int(noisy.y_train.max()) <= 9

    def test_noisy_label_is_always_a_wrong_class(self):
        """A corrupted label is never the true class: with a noise level near 1 nearly every
        label differs (a random class, right or wrong, would keep about 10% of them)."""
        clean, noisy = (
            digits_split(1000, 100, seed=2),
            digits_split(1000, 100, label_noise=0.999, seed=2),
        )
        assert (clean.y_train != noisy.y_train).double().mean().item() > 0.99

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            ({"n_train": 5}, ValueError, r"n_train must be in \[10, 1697\], got 5"),
            ({"n_train": N_DIGITS}, ValueError, r"n_train must be in"),
            ({"n_train": 50.5}, TypeError, r"n_train must be an integer"),
            ({"n_train": "50"}, TypeError, r"n_train must be an integer"),
            ({"n_val": -1}, ValueError, r"n_val must be in \[0, "),
            (
                {"n_train": 1000, "n_val": 1000},
                ValueError,
                r"n_val must be in \[0, 697\], got 1000",
            ),
            ({"label_noise": 1.0}, ValueError, r"label_noise must be in \[0, 1\), got 1"),
            ({"label_noise": -0.1}, ValueError, r"label_noise must be in \[0, 1\)"),
            ({"label_noise": float("nan")}, ValueError, r"label_noise must be finite"),
            ({"label_noise": True}, TypeError, r"label_noise must be a real number"),
            ({"seed": -1}, ValueError, r"seed must be >= 0, got -1"),
            ({"seed": 1.5}, TypeError, r"seed must be an integer"),
        ],
    )
    def test_bad_input(self, kwargs, error, match):
        args = {"n_train": 100, "n_val": 50, **kwargs}
        with pytest.raises(error, match=match):
            digits_split(**args)

    @settings(max_examples=12, deadline=None)
    @given(
        n_train=st.integers(10, 1500),
        n_val=st.integers(0, 197),
        seed=st.integers(0, 2**31),
    )
    def test_sizes_add_up_and_train_is_standardised(self, n_train, n_val, seed):
        s = digits_split(n_train, n_val, seed=seed)
        assert len(s.y_train) + len(s.y_val) + len(s.y_test) == N_DIGITS
        assert len(s.x_train) == n_train and len(s.x_val) == n_val
        assert abs(s.x_train.double().mean().item()) < 1e-4
        assert abs(s.x_train.double().std().item() - 1) < 1e-4


class TestSamplePhoto:
    @pytest.mark.parametrize("name", ["china.jpg", "flower.jpg"])
    def test_shape_dtype_and_range(self, name):
        img = sample_photo(name, 64)
        assert img.shape == (3, 64, 64)
        assert img.dtype == torch.float32
        assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0

    def test_is_a_real_photo_not_constant(self):
        img = sample_photo("china.jpg", 32)
        assert float(img.std()) > 0.05

    def test_none_keeps_the_original_size(self):
        img = sample_photo("china.jpg", None)
        assert img.shape == (3, 427, 640)
        assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            (
                {"name": "cat.jpg"},
                ValueError,
                r"name must be 'china.jpg' or 'flower.jpg', got 'cat.jpg'",
            ),
            ({"size": 4}, ValueError, r"size must be in \[8, 427\], got 4"),
            ({"size": 1000}, ValueError, r"size must be in \[8, 427\], got 1000"),
            ({"size": 12.5}, TypeError, r"size must be an integer"),
        ],
    )
    def test_bad_input(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            sample_photo(**kwargs)


# ---------------------------------------------------------------------------- models


class TestMLP:
    def test_output_shape_on_digits(self):
        assert MLP()(torch.randn(5, 1, 8, 8)).shape == (5, 10)

    def test_output_shape_other_sizes(self):
        model = MLP(in_features=12, hidden=7, depth=3, num_classes=4)
        assert model(torch.randn(2, 12)).shape == (2, 4)

    def test_parameter_count(self):
        model = MLP(in_features=64, hidden=32, depth=2, num_classes=10)
        expected = (64 * 32 + 32) + (32 * 32 + 32) + (32 * 10 + 10)
        assert sum(p.numel() for p in model.parameters()) == expected

    def test_depth_is_the_number_of_hidden_layers(self):
        model = MLP(hidden=8, depth=4)
        assert sum(isinstance(m, nn.Linear) for m in model) == 5

    def test_dropout_layers_use_regcourse_dropout(self):
        model = MLP(hidden=8, depth=2, dropout=0.3)
        drops = [m for m in model if isinstance(m, Dropout)]
        assert len(drops) == 2 and all(d.p == 0.3 for d in drops)

    def test_no_dropout_layer_when_p_is_zero(self):
        assert not any(isinstance(m, Dropout) for m in MLP(hidden=8, dropout=0.0))

    def test_batch_norm_option(self):
        model = MLP(hidden=8, depth=2, batch_norm=True)
        assert sum(isinstance(m, nn.BatchNorm1d) for m in model) == 2
        assert not any(isinstance(m, nn.BatchNorm1d) for m in MLP(hidden=8))

    def test_eval_output_is_deterministic_with_dropout(self):
        model = MLP(hidden=16, dropout=0.5).eval()
        x = torch.randn(4, 64)
        assert torch.equal(model(x), model(x))

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            ({"hidden": 0}, ValueError, r"hidden must be >= 1, got 0"),
            ({"depth": 0}, ValueError, r"depth must be >= 1, got 0"),
            ({"num_classes": 1}, ValueError, r"num_classes must be >= 2, got 1"),
            ({"in_features": "64"}, TypeError, r"in_features must be an integer"),
            ({"dropout": 1.0}, ValueError, r"dropout must be in \[0, 1\), got 1"),
            ({"dropout": -0.2}, ValueError, r"dropout must be in \[0, 1\)"),
        ],
    )
    def test_bad_input(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            MLP(**kwargs)


class TestSmallCNN:
    def test_output_shape(self):
        assert SmallCNN()(torch.randn(3, 1, 8, 8)).shape == (3, 10)

    def test_output_shape_other_sizes(self):
        model = SmallCNN(in_channels=3, channels=4, num_classes=5)
        assert model(torch.randn(2, 3, 8, 8)).shape == (2, 5)

    def test_batch_norm_and_dropout_options(self):
        model = SmallCNN(channels=4, dropout=0.25, batch_norm=True)
        assert sum(isinstance(m, nn.BatchNorm2d) for m in model) == 2
        assert [m.p for m in model if isinstance(m, Dropout)] == [0.25]

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            ({"channels": 0}, ValueError, r"channels must be >= 1, got 0"),
            ({"in_channels": 0}, ValueError, r"in_channels must be >= 1"),
            ({"num_classes": 1}, ValueError, r"num_classes must be >= 2"),
            ({"dropout": 1.5}, ValueError, r"dropout must be in \[0, 1\), got 1.5"),
        ],
    )
    def test_bad_input(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            SmallCNN(**kwargs)


class TestBuildModel:
    @pytest.mark.parametrize("kind", ["mlp", "cnn"])
    def test_same_seed_same_weights(self, kind):
        a, b = build_model(kind, seed=4), build_model(kind, seed=4)
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)

    @pytest.mark.parametrize("kind", ["mlp", "cnn"])
    def test_different_seed_different_weights(self, kind):
        a, b = build_model(kind, seed=0), build_model(kind, seed=1)
        assert not torch.equal(next(a.parameters()), next(b.parameters()))

    def test_global_rng_state_unchanged(self):
        torch.manual_seed(123)
        before = torch.get_rng_state()
        build_model("mlp", seed=5)
        assert torch.equal(torch.get_rng_state(), before)

    def test_result_does_not_depend_on_global_rng(self):
        torch.manual_seed(1)
        a = build_model("mlp", seed=2, hidden=8)
        torch.manual_seed(999)
        b = build_model("mlp", seed=2, hidden=8)
        assert torch.equal(a[1].weight, b[1].weight)

    def test_kind_and_kwargs(self):
        assert isinstance(build_model("mlp", hidden=8), MLP)
        cnn = build_model("cnn", channels=4)
        assert isinstance(cnn, SmallCNN) and cnn[0].out_channels == 4
        assert build_model("mlp", hidden=8)[1].out_features == 8

    @pytest.mark.parametrize(
        "args, kwargs, error, match",
        [
            (("rnn",), {}, ValueError, r"kind must be one of \[.*'mlp'\], got 'rnn'"),
            (("mlp",), {"seed": -1}, ValueError, r"seed must be >= 0, got -1"),
            (("mlp",), {"seed": "0"}, TypeError, r"seed must be an integer"),
            (("mlp",), {"hidden": 0}, ValueError, r"hidden must be >= 1"),
            (("mlp",), {"width": 3}, TypeError, r"width"),
        ],
    )
    def test_bad_input(self, args, kwargs, error, match):
        with pytest.raises(error, match=match):
            build_model(*args, **kwargs)


# ---------------------------------------------------------------------------- training


class _StopAt:
    """An early-stopping stub: asks to stop at a given epoch, remembers what it saw."""

    def __init__(self, stop_at: int, best_epoch: int | None = None):
        self.stop_at, self.seen, self.restored = stop_at, [], 0
        if best_epoch is not None:
            self.best_epoch = best_epoch

    def step(self, val_loss, model):
        self.seen.append(val_loss)
        return len(self.seen) >= self.stop_at

    def restore(self, model):
        self.restored += 1


class TestSeeded:
    def test_same_seed_same_draws(self):
        with seeded(3):
            a = torch.rand(5)
        with seeded(3):
            b = torch.rand(5)
        assert torch.equal(a, b)

    def test_restores_global_state(self):
        torch.manual_seed(0)
        before = torch.get_rng_state()
        with seeded(7):
            torch.rand(10)
        assert torch.equal(torch.get_rng_state(), before)

    def test_bad_seed(self):
        with pytest.raises(ValueError, match=r"seed must be >= 0, got -3"):
            with seeded(-3):
                pass


class TestEvaluate:
    def test_matches_manual_loss_and_accuracy(self):
        data = _tiny_data()
        model = _tiny_model().eval()
        with torch.no_grad():
            logits = model(data.x_val)
        loss, acc = evaluate(model, data.x_val, data.y_val)
        assert loss == pytest.approx(F.cross_entropy(logits, data.y_val).item(), rel=1e-5)
        assert acc == pytest.approx((logits.argmax(1) == data.y_val).double().mean().item())

    def test_batch_size_does_not_change_the_result(self):
        data = _tiny_data()
        model = _tiny_model()
        big = evaluate(model, data.x_test, data.y_test)
        small = evaluate(model, data.x_test, data.y_test, batch_size=7)
        assert small[0] == pytest.approx(big[0], rel=1e-5)
        assert small[1] == big[1]

    def test_dropout_model_gives_identical_metrics_on_repeated_calls(self):
        data = _tiny_data()
        model = _tiny_model(dropout=0.5).train()
        results = {evaluate(model, data.x_val, data.y_val) for _ in range(5)}
        assert len(results) == 1

    def test_measures_in_eval_mode(self):
        data = _tiny_data()
        model = _tiny_model(dropout=0.5).train()
        got = evaluate(model, data.x_val, data.y_val)
        model.eval()
        with torch.no_grad():
            logits = model(data.x_val)
        assert got[0] == pytest.approx(F.cross_entropy(logits, data.y_val).item(), rel=1e-5)

    @pytest.mark.parametrize("mode", [True, False])
    def test_restores_the_previous_mode(self, mode):
        data = _tiny_data()
        model = _tiny_model(dropout=0.5).train(mode)
        evaluate(model, data.x_val, data.y_val)
        assert model.training is mode
        assert all(m.training is mode for m in model.modules())

    def test_does_not_build_a_graph(self):
        data = _tiny_data()
        model = _tiny_model()
        evaluate(model, data.x_val, data.y_val)
        assert all(p.grad is None for p in model.parameters())

    @pytest.mark.parametrize(
        "x, y, error, match",
        [
            ([[0.0]], torch.tensor([0]), TypeError, r"x must be a torch.Tensor"),
            (
                torch.zeros(3, 64),
                torch.zeros(2, dtype=torch.int64),
                ValueError,
                r"x and y must have the same length, got 3 and 2",
            ),
            (
                torch.zeros(0, 64),
                torch.zeros(0, dtype=torch.int64),
                ValueError,
                r"x must not be empty",
            ),
            (
                torch.full((2, 64), float("nan")),
                torch.zeros(2, dtype=torch.int64),
                ValueError,
                r"x must be finite",
            ),
        ],
    )
    def test_bad_input(self, x, y, error, match):
        with pytest.raises(error, match=match):
            evaluate(_tiny_model(), x, y)

    @pytest.mark.parametrize(
        "batch_size, error, match",
        [
            (-5, ValueError, r"batch_size must be >= 1, got -5"),
            (0, ValueError, r"batch_size must be >= 1, got 0"),
            (2.5, TypeError, r"batch_size must be an integer"),
            ("8", TypeError, r"batch_size must be an integer"),
        ],
    )
    def test_bad_batch_size(self, batch_size, error, match):
        data = _tiny_data()
        with pytest.raises(error, match=match):
            evaluate(_tiny_model(), data.x_val, data.y_val, batch_size=batch_size)

    def test_numpy_batch_size_accepted(self):
        data = _tiny_data()
        model = _tiny_model()
        assert evaluate(model, data.x_val, data.y_val, batch_size=np.int64(7)) == pytest.approx(
            evaluate(model, data.x_val, data.y_val)
        )

    def test_restores_mode_after_an_error(self):
        model = _tiny_model(dropout=0.5).train()
        with pytest.raises(RuntimeError):
            evaluate(model, torch.zeros(3, 5), torch.zeros(3, dtype=torch.int64))  # wrong width
        assert model.training


class TestBatchIndices:
    @pytest.mark.parametrize(
        "n, bs, sizes",
        [
            (9, 4, [4, 5]),
            (10, 4, [4, 4, 2]),
            (8, 4, [4, 4]),
            (5, 8, [5]),
            (3, 1, [1, 1, 1]),
            (1, 4, [1]),
        ],
    )
    def test_sizes_merge_a_last_batch_of_one(self, n, bs, sizes):
        assert [len(b) for b in batch_indices(n, bs, shuffle=False)] == sizes

    @given(n=st.integers(1, 200), bs=st.integers(1, 64), seed=st.integers(0, 2**16))
    @settings(max_examples=60, deadline=None)
    def test_every_index_once_and_no_batch_of_one(self, n, bs, seed):
        batches = batch_indices(n, bs, torch.Generator().manual_seed(seed))
        assert sorted(torch.cat(batches).tolist()) == list(range(n))
        if bs > 1 and n > 1:
            assert min(len(b) for b in batches) >= 2
        assert max(len(b) for b in batches) <= bs + 1

    def test_shuffle_uses_the_generator(self):
        a = batch_indices(20, 5, torch.Generator().manual_seed(1))
        b = batch_indices(20, 5, torch.Generator().manual_seed(1))
        c = batch_indices(20, 5, torch.Generator().manual_seed(2))
        assert all(torch.equal(x, y) for x, y in zip(a, b))
        assert not all(torch.equal(x, y) for x, y in zip(a, c))

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            (dict(n=0, batch_size=4), ValueError, r"n must be >= 1, got 0"),
            (dict(n=5, batch_size=-5), ValueError, r"batch_size must be >= 1, got -5"),
            (
                dict(n=5, batch_size=2, generator=3),
                TypeError,
                r"generator must be a torch.Generator",
            ),
            (dict(n=5, batch_size=2, shuffle="no"), TypeError, r"shuffle must be a bool"),
        ],
    )
    def test_bad_input(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            batch_indices(**kwargs)


class TestMinibatches:
    def test_pairs_match(self):
        x = torch.arange(11.0).unsqueeze(1)
        y = torch.arange(11)
        pairs = list(minibatches(x, y, 5, torch.Generator().manual_seed(0)))
        assert [len(yb) for _, yb in pairs] == [5, 6]
        assert all(torch.equal(xb[:, 0].long(), yb) for xb, yb in pairs)

    def test_length_mismatch(self):
        with pytest.raises(ValueError, match=r"x and y must have the same length, got 4 and 3"):
            list(minibatches(torch.zeros(4, 2), torch.zeros(3), 2))


class TestTrainEpoch:
    def test_equals_the_loop_written_out(self):
        data = _tiny_data()
        a, b = _tiny_model(seed=2), _tiny_model(seed=2)
        opt_a = torch.optim.SGD(a.parameters(), lr=0.1)
        opt_b = torch.optim.SGD(b.parameters(), lr=0.1)
        train_epoch(
            a,
            minibatches(data.x_train, data.y_train, 8, torch.Generator().manual_seed(0)),
            F.cross_entropy,
            opt_a,
        )
        b.train()
        for idx in batch_indices(len(data.x_train), 8, torch.Generator().manual_seed(0)):
            loss = F.cross_entropy(b(data.x_train[idx]), data.y_train[idx])
            opt_b.zero_grad()
            loss.backward()
            opt_b.step()
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))

    def test_sets_train_mode(self):
        data = _tiny_data()
        model = _tiny_model(dropout=0.5).eval()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        train_epoch(model, minibatches(data.x_train, data.y_train, 8), F.cross_entropy, opt)
        assert model.training

    def test_returns_the_size_weighted_mean_loss(self):
        model = nn.Linear(2, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.0)  # no change: losses are fixed
        x, y = torch.randn(7, 2), torch.tensor([0, 1, 0, 1, 1, 0, 1])
        got = train_epoch(model, minibatches(x, y, 3, shuffle=False), F.cross_entropy, opt)
        with torch.no_grad():
            expected = F.cross_entropy(model(x), y).item()
        assert got == pytest.approx(expected, rel=1e-6)

    @pytest.mark.parametrize(
        "which, error, match",
        [
            ("model", TypeError, r"model must be an nn.Module, got str"),
            ("loss_fn", TypeError, r"loss_fn must be callable, got int"),
            ("optimizer", TypeError, r"optimizer must be a torch.optim.Optimizer, got list"),
            ("batches", ValueError, r"batches must hold at least one batch"),
        ],
    )
    def test_bad_input(self, which, error, match):
        model = _tiny_model()
        args = dict(
            model=model,
            batches=[(torch.zeros(2, 64), torch.zeros(2, dtype=torch.int64))],
            loss_fn=F.cross_entropy,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        )
        args[which] = {"model": "mlp", "loss_fn": 3, "optimizer": [], "batches": []}[which]
        with pytest.raises(error, match=match):
            train_epoch(**args)


class TestMakeOptimizer:
    def test_kinds_and_settings(self):
        model = _tiny_model()
        sgd = make_optimizer(model, "sgd", lr=0.1, weight_decay=0.01)
        assert isinstance(sgd, torch.optim.SGD)
        assert sgd.defaults["momentum"] == 0.9 and sgd.defaults["weight_decay"] == 0.01
        adam = make_optimizer(model, "adam", lr=0.01, weight_decay=0.1)
        assert type(adam) is torch.optim.Adam and adam.defaults["weight_decay"] == 0.1
        adamw = make_optimizer(model, "adamw", lr=0.01, weight_decay=0.5)
        assert type(adamw) is torch.optim.AdamW and adamw.defaults["lr"] == 0.01

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            (
                {"name": "rmsprop"},
                ValueError,
                r"optimizer must be one of \['adam', 'adamw', 'sgd'\], got 'rmsprop'",
            ),
            ({"lr": 0.0}, ValueError, r"lr must be > 0, got 0"),
            ({"weight_decay": -1.0}, ValueError, r"weight_decay must be >= 0, got -1"),
        ],
    )
    def test_bad_input(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            make_optimizer(_tiny_model(), **kwargs)


class TestTrain:
    @pytest.mark.parametrize("n_train", [33, 65])
    def test_final_batch_of_one_with_batch_norm(self, n_train):
        """n_train = k * batch_size + 1 used to crash batch norm mid-epoch ("Expected more
        than 1 value per channel"); the last example now joins the previous batch."""
        data = _tiny_data(n_train=n_train)
        model = MLP(hidden=16, batch_norm=True)
        h = train(model, data, epochs=2, batch_size=32)
        assert h.stopped_epoch == 2

    def test_equals_a_loop_built_from_the_pieces(self):
        data = _tiny_data(n_train=41)
        a, b = _tiny_model(seed=4, dropout=0.3), _tiny_model(seed=4, dropout=0.3)
        train(a, data, epochs=2, batch_size=8, optimizer="sgd", lr=0.05, seed=6)
        opt = make_optimizer(b, "sgd", lr=0.05)
        g = torch.Generator().manual_seed(6)
        with seeded(6):
            for _ in range(2):
                train_epoch(b, minibatches(data.x_train, data.y_train, 8, g), F.cross_entropy, opt)
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))

    def test_one_training_example_refused(self):
        data = _tiny_data()
        one = Split(
            data.x_train[:1], data.y_train[:1], data.x_val, data.y_val, data.x_test, data.y_test, 10
        )
        with pytest.raises(ValueError, match=r"data.x_train must hold at least 2 examples, got 1"):
            train(_tiny_model(), one, epochs=1)

    def test_same_seed_identical_history_and_weights(self):
        data = _tiny_data(label_noise=0.2)
        runs = []
        for _ in range(2):
            model = _tiny_model(seed=1, dropout=0.3)
            runs.append((train(model, data, epochs=3, seed=5), model.state_dict()))
        (h1, s1), (h2, s2) = runs
        assert h1.as_dict() == h2.as_dict()
        assert all(torch.equal(s1[k], s2[k]) for k in s1)

    def test_different_seed_different_history(self):
        data = _tiny_data()
        h1 = train(_tiny_model(dropout=0.3), data, epochs=3, seed=0)
        h2 = train(_tiny_model(dropout=0.3), data, epochs=3, seed=1)
        assert h1.train_loss != h2.train_loss

    def test_global_rng_state_unchanged(self):
        data = _tiny_data()
        torch.manual_seed(42)
        before = torch.get_rng_state()
        train(_tiny_model(dropout=0.5), data, epochs=2)
        assert torch.equal(torch.get_rng_state(), before)

    def test_history_has_one_entry_per_epoch(self):
        h = train(_tiny_model(), _tiny_data(), epochs=4)
        assert isinstance(h, History)
        assert len(h.train_loss) == len(h.val_loss) == len(h.train_acc) == len(h.val_acc) == 4
        assert h.stopped_epoch == 4 and h.best_epoch == 4

    def test_history_is_measured_in_eval_mode(self):
        data = _tiny_data()
        model = _tiny_model(dropout=0.5)
        h = train(model, data, epochs=3)
        assert (h.train_loss[-1], h.train_acc[-1]) == evaluate(model, data.x_train, data.y_train)
        assert (h.val_loss[-1], h.val_acc[-1]) == evaluate(model, data.x_val, data.y_val)

    def test_leaves_the_model_in_eval_mode(self):
        model = _tiny_model(dropout=0.5).train()
        train(model, _tiny_data(), epochs=1)
        assert not model.training
        assert not any(m.training for m in model.modules())

    def test_updates_are_made_in_train_mode(self):
        seen = []

        class Spy(nn.Module):
            def forward(self, x):
                if torch.is_grad_enabled():
                    seen.append(self.training)
                return x

        model = nn.Sequential(_tiny_model(), Spy())
        train(model, _tiny_data(), epochs=2, batch_size=20)
        assert seen == [True] * 4

    def test_learns_the_digits(self):
        data = digits_split(150, 100, seed=0)
        model = build_model("mlp", seed=0, hidden=64, depth=1)
        h = train(model, data, epochs=10, lr=3e-3)
        assert h.train_acc[-1] > 0.95 and h.val_acc[-1] > 0.8
        assert h.train_loss[-1] < h.train_loss[0]

    def test_weight_decay_shrinks_the_weights(self):
        data = _tiny_data()
        norms = []
        for wd in (0.0, 20.0):
            model = _tiny_model()
            train(model, data, epochs=5, weight_decay=wd)
            norms.append(sum(p.norm() ** 2 for p in model.parameters()).item())
        assert norms[1] < 0.9 * norms[0]

    def test_early_stopping_hook_is_honoured(self):
        stub = _StopAt(3, best_epoch=2)
        h = train(_tiny_model(), _tiny_data(), epochs=10, early_stopping=stub)
        assert h.stopped_epoch == 3
        assert len(h.val_loss) == 3
        assert stub.seen == h.val_loss
        assert stub.restored == 1
        assert h.best_epoch == 2

    def test_early_stopping_without_best_epoch_attribute(self):
        h = train(_tiny_model(), _tiny_data(), epochs=10, early_stopping=_StopAt(4))
        assert h.stopped_epoch == 4 and h.best_epoch == 4

    def test_early_stopping_that_never_stops(self):
        stub = _StopAt(100)
        h = train(_tiny_model(), _tiny_data(), epochs=3, early_stopping=stub)
        assert h.stopped_epoch == 3 and stub.restored == 1

    def test_augment_is_called_once_per_batch_with_the_generator(self):
        calls = []

        def augment(x, y, g):
            calls.append((x.shape[0], isinstance(g, torch.Generator)))
            return x, y

        train(_tiny_model(), _tiny_data(n_train=40), epochs=2, batch_size=16, augment=augment)
        assert calls == [(16, True), (16, True), (8, True)] * 2

    @pytest.mark.parametrize("eps", [0.0, 0.2])
    def test_soft_labels_path_matches_hard_labels(self, eps):
        """One-hot float targets from ``augment`` train like the integer labels, with and
        without label smoothing (the soft path smooths the targets itself)."""
        data = _tiny_data()

        def one_hot(x, y, g):
            return x, F.one_hot(y, 10).to(x.dtype)

        states = []
        for augment in (None, one_hot):
            model = _tiny_model(seed=3)
            train(model, data, epochs=3, label_smoothing=eps, augment=augment, seed=1)
            states.append(model.state_dict())
        hard, soft = states
        assert all(torch.allclose(hard[k], soft[k], atol=1e-5) for k in hard)

    def test_soft_labels_really_change_the_targets(self):
        data = _tiny_data()

        def uniform(x, y, g):
            return x, torch.full((len(y), 10), 0.1)

        model_a, model_b = _tiny_model(seed=3), _tiny_model(seed=3)
        train(model_a, data, epochs=2)
        train(model_b, data, epochs=2, augment=uniform)
        assert not torch.allclose(model_a[1].weight, model_b[1].weight)

    def test_progress_bar_goes_to_stderr_only(self, capsys):
        data = _tiny_data()
        h_bar = train(_tiny_model(), data, epochs=2, progress=True, desc="unit test")
        out, err = capsys.readouterr()
        assert out == ""
        h_plain = train(_tiny_model(), data, epochs=2)
        assert h_bar.as_dict() == h_plain.as_dict()

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            ({"epochs": 0}, ValueError, r"epochs must be >= 1, got 0"),
            ({"epochs": 2.5}, TypeError, r"epochs must be an integer"),
            ({"batch_size": 0}, ValueError, r"batch_size must be >= 1, got 0"),
            ({"lr": -1.0}, ValueError, r"lr must be > 0, got -1"),
            ({"weight_decay": -0.1}, ValueError, r"weight_decay must be >= 0"),
            ({"optimizer": "lbfgs"}, ValueError, r"optimizer must be one of"),
            ({"label_smoothing": 1.5}, ValueError, r"label_smoothing must be in \[0, 1\], got 1.5"),
            ({"seed": -2}, ValueError, r"seed must be >= 0, got -2"),
        ],
    )
    def test_bad_input(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            train(_tiny_model(), _tiny_data(), **kwargs)

    def test_bad_data(self):
        data = _tiny_data()
        bad = Split(
            data.x_train.long(), data.y_train, data.x_val, data.y_val, data.x_test, data.y_test, 10
        )
        with pytest.raises(TypeError, match=r"data.x_train must be a floating-point tensor"):
            train(_tiny_model(), bad, epochs=1)
