"""Tests of regcourse.recipe (the solid default) and of the chapter's experiments."""

from __future__ import annotations

import inspect

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import regcourse.recipe as recipe
from regcourse import augment as A
from regcourse.data import digits_split
from regcourse.dropout import Dropout
from regcourse.early_stopping import EarlyStopping
from regcourse.recipe import RecipeResult, image_augment, no_regularization, solid_default

SMALL = dict(channels=4, epochs=3)  # a CNN small enough to train in a blink


@pytest.fixture(scope="module")
def data():
    return digits_split(60, 40, seed=0)


@pytest.fixture
def captured(monkeypatch):
    """Record the keyword arguments solid_default passes to train()."""
    calls = []
    real = recipe.train

    def spy(model, data, **kwargs):
        calls.append(kwargs)
        return real(model, data, **kwargs)

    monkeypatch.setattr(recipe, "train", spy)
    return calls


def _layers(model, kind):
    return [m for m in model.modules() if isinstance(m, kind)]


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class TestRestoredValues:
    def test_weight_decay_is_adamw_default(self):
        # the source's stripped "AdamW with λ = ..." restored as torch's own default
        default = inspect.signature(torch.optim.AdamW).parameters["weight_decay"].default
        assert recipe.WEIGHT_DECAY == default

    def test_dropout_inside_the_usual_range(self):
        low, high = recipe.DROPOUT_RANGE
        assert 0 < low < high < 1
        assert low <= recipe.DROPOUT <= high

    def test_patience_and_smoothing(self):
        assert 5 <= recipe.PATIENCE <= 20  # "around 10"; 5-20 is the common range
        assert recipe.LABEL_SMOOTHING == pytest.approx(0.1)

    def test_defaults_of_solid_default_are_the_constants(self):
        params = inspect.signature(solid_default).parameters
        assert params["weight_decay"].default == recipe.WEIGHT_DECAY
        assert params["patience"].default == recipe.PATIENCE
        assert params["dropout"].default == recipe.DROPOUT
        assert params["label_smoothing"].default == recipe.LABEL_SMOOTHING
        assert params["batch_norm"].default is True
        assert params["augment"].default == "shift_rotate"


class TestSolidDefault:
    def test_components_reach_the_training_loop(self, data, captured):
        run = solid_default(data, **SMALL)
        (kw,) = captured
        assert kw["optimizer"] == "adamw"
        assert kw["weight_decay"] == recipe.WEIGHT_DECAY
        assert kw["label_smoothing"] == recipe.LABEL_SMOOTHING
        assert isinstance(kw["augment"], A.Augment)
        assert isinstance(kw["early_stopping"], EarlyStopping)
        assert kw["early_stopping"].patience == recipe.PATIENCE
        assert len(_layers(run.model, nn.BatchNorm2d)) == 2
        assert [m.p for m in _layers(run.model, Dropout)] == [recipe.DROPOUT]

    def test_augmentation_has_no_flip(self, data, captured):
        solid_default(data, **SMALL)
        steps = list(captured[0]["augment"].steps)
        assert not any(isinstance(s, A.RandomHFlip) for s in steps)
        assert {type(s) for s in steps} == {A.RandomCrop, A.RandomRotation}

    @pytest.mark.parametrize(
        "off, key, value",
        [
            ({"weight_decay": 0.0}, "weight_decay", 0.0),
            ({"label_smoothing": 0.0}, "label_smoothing", 0.0),
            ({"augment": None}, "augment", None),
            ({"patience": None}, "early_stopping", None),
        ],
    )
    def test_each_training_component_switches_off(self, data, captured, off, key, value):
        solid_default(data, **SMALL, **off)
        assert captured[0][key] == value
        # the other components stay on
        others = {"weight_decay": recipe.WEIGHT_DECAY, "label_smoothing": recipe.LABEL_SMOOTHING}
        for k, v in others.items():
            if k != key:
                assert captured[0][k] == v

    def test_batch_norm_switches_off(self, data):
        run = solid_default(data, batch_norm=False, **SMALL)
        assert not _layers(run.model, nn.modules.batchnorm._BatchNorm)
        assert _layers(run.model, Dropout)

    def test_dropout_switches_off_and_changes(self, data):
        assert not _layers(solid_default(data, dropout=0.0, **SMALL).model, Dropout)
        assert [m.p for m in _layers(solid_default(data, dropout=0.4, **SMALL).model, Dropout)] == [
            0.4
        ]

    def test_custom_augment_is_called(self, data):
        seen = []

        def aug(x, y, g):
            seen.append(x.shape)
            return x, y

        run = solid_default(data, augment=aug, **SMALL)
        assert run.settings["augment"] == "custom"
        assert len(seen) == SMALL["epochs"] * 2  # 60 images, batches of 32: 2 per epoch

    def test_mlp_and_model_options(self, data):
        run = solid_default(data, model="mlp", hidden=16, depth=1, epochs=2)
        assert len(_layers(run.model, nn.BatchNorm1d)) == 1
        assert run.model[1].out_features == 16
        assert run.settings["hidden"] == 16

    def test_result_is_measured_in_eval_mode_on_the_test_set(self, data):
        run = solid_default(data, **SMALL)
        assert isinstance(run, RecipeResult)
        assert not run.model.training
        with torch.no_grad():
            pred = run.model(data.x_test).argmax(1)
            train_pred = run.model(data.x_train).argmax(1)
        assert run.test_acc == pytest.approx((pred == data.y_test).float().mean().item())
        assert run.train_acc == pytest.approx((train_pred == data.y_train).float().mean().item())
        assert run.gap == pytest.approx(run.train_acc - run.test_acc)

    def test_early_stopping_restores_the_best_epoch(self, data):
        run = solid_default(data, patience=2, channels=4, epochs=30, lr=0.05)
        h = run.history
        assert h.stopped_epoch < 30  # this run does stop early ...
        assert h.stopped_epoch - h.best_epoch == 2  # ... two epochs after its best one
        best = min(range(len(h.val_loss)), key=h.val_loss.__getitem__) + 1
        assert h.best_epoch == best
        _, val_acc = recipe.evaluate(run.model, data.x_val, data.y_val)
        assert val_acc == h.val_acc[best - 1]  # the model holds the best epoch's weights

    def test_without_early_stopping_all_epochs_run(self, data):
        h = solid_default(data, patience=None, **SMALL).history
        assert h.stopped_epoch == h.best_epoch == SMALL["epochs"]


class TestDeterminism:
    def test_same_seed_same_model(self, data):
        a, b = solid_default(data, seed=3, **SMALL), solid_default(data, seed=3, **SMALL)
        assert _same_state(a.model, b.model)
        assert a.history.as_dict() == b.history.as_dict()

    def test_other_seed_other_model(self, data):
        a, b = solid_default(data, seed=3, **SMALL), solid_default(data, seed=4, **SMALL)
        assert not _same_state(a.model, b.model)

    def test_global_generator_does_not_matter(self, data):
        torch.manual_seed(123)
        a = solid_default(data, **SMALL)
        torch.manual_seed(456)
        b = solid_default(data, **SMALL)
        assert _same_state(a.model, b.model)


class TestNoRegularization:
    def test_everything_is_off(self, data, captured):
        run = no_regularization(data, **SMALL)
        (kw,) = captured
        assert kw["weight_decay"] == 0.0 and kw["label_smoothing"] == 0.0
        assert kw["augment"] is None and kw["early_stopping"] is None
        assert not _layers(run.model, nn.modules.batchnorm._BatchNorm)
        assert not _layers(run.model, Dropout)
        assert run.history.stopped_epoch == SMALL["epochs"]

    def test_same_network_and_budget_as_the_recipe(self, data, captured):
        rec = solid_default(data, seed=1, **SMALL)
        base = no_regularization(data, seed=1, **SMALL)
        for key in ("epochs", "lr", "batch_size", "seed", "optimizer"):
            assert captured[0][key] == captured[1][key]
        shapes = lambda m, kind: [p.weight.shape for p in _layers(m, kind)]  # noqa: E731
        for kind in (nn.Conv2d, nn.Linear):
            assert shapes(rec.model, kind) == shapes(base.model, kind)

    def test_same_initial_weights(self, data, monkeypatch):
        # stop both runs before the first update: their shared layers start from the same weights
        starts = []
        monkeypatch.setattr(
            recipe, "train", lambda model, data, **kw: starts.append(model) or recipe.History()
        )
        monkeypatch.setattr(recipe, "evaluate", lambda model, x, y: (0.0, 0.0))
        solid_default(data, seed=2, **SMALL)
        no_regularization(data, seed=2, **SMALL)
        convs = [_layers(m, nn.Conv2d) + _layers(m, nn.Linear) for m in starts]
        assert len(convs[0]) == len(convs[1]) == 3
        assert all(torch.equal(a.weight, b.weight) for a, b in zip(*convs))


class TestImageAugment:
    def test_zero_strength_is_identity(self, data):
        aug = image_augment(data.x_train, max_shift=0, max_degrees=0)
        x = data.x_train[:5]
        xa, ya = aug(x, data.y_train[:5], torch.Generator().manual_seed(0))
        assert torch.allclose(xa, x, atol=1e-5)
        assert torch.equal(ya, data.y_train[:5])

    def test_shift_only_is_a_shift_with_background_fill(self, data):
        aug = image_augment(data.x_train, max_shift=1, max_degrees=0)
        x = data.x_train[:20]
        xa, _ = aug(x, data.y_train[:20], torch.Generator().manual_seed(1))
        bg = float(data.x_train.min())
        padded = torch.nn.functional.pad(x, (1, 1, 1, 1), value=bg)
        for i in range(len(x)):
            shifts = [padded[i, :, r : r + 8, c : c + 8] for r in range(3) for c in range(3)]
            assert any(torch.allclose(xa[i], s, atol=1e-5) for s in shifts)

    def test_eval_mode_is_identity(self, data):
        aug = image_augment(data.x_train).eval()
        x = data.x_train[:4]
        assert aug(x, data.y_train[:4], torch.Generator())[0] is x

    @settings(max_examples=20, deadline=None)
    @given(
        seed=st.integers(0, 2**16),
        shift=st.integers(0, 2),
        degrees=st.floats(0, 30),
    )
    def test_shape_and_value_range_kept(self, seed, shift, degrees):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(6, 1, 8, 8, generator=g)
        xa, _ = image_augment(x, shift, degrees)(x, torch.zeros(6, dtype=torch.long), g)
        assert xa.shape == x.shape
        # shifts copy pixels, bilinear rotation averages them with the background (the minimum)
        assert xa.min() >= x.min() - 1e-5 and xa.max() <= x.max() + 1e-5

    @pytest.mark.parametrize(
        "args, err, match",
        [
            ((torch.zeros(4, 64),), ValueError, "x_train"),
            (([1.0],), TypeError, "x_train"),
            ((torch.zeros(2, 1, 8, 6),), ValueError, "x_train"),
            ((torch.zeros(2, 1, 8, 8), -1), ValueError, "max_shift"),
            ((torch.zeros(2, 1, 8, 8), 1, 200.0), ValueError, "max_degrees"),
        ],
    )
    def test_bad_input(self, args, err, match):
        with pytest.raises(err, match=match):
            image_augment(*args)


class TestBadInput:
    @pytest.mark.parametrize(
        "kwargs, err, match",
        [
            ({"model": "rnn"}, ValueError, "model"),
            ({"weight_decay": -0.1}, ValueError, "weight_decay"),
            ({"patience": 0}, ValueError, "patience"),
            ({"patience": 2.5}, TypeError, "patience"),
            ({"dropout": 1.0}, ValueError, "dropout"),
            ({"label_smoothing": 1.5}, ValueError, "label_smoothing"),
            ({"epochs": 0}, ValueError, "epochs"),
            ({"lr": 0.0}, ValueError, "lr"),
            ({"batch_size": 0}, ValueError, "batch_size"),
            ({"seed": -1}, ValueError, "seed"),
            ({"augment": "flip"}, ValueError, "augment"),
            ({"augment": 3}, TypeError, "augment"),
            ({"batch_norm": "yes"}, TypeError, "batch_norm"),
            ({"progress": 1}, TypeError, "progress"),
            ({"channels": 0}, ValueError, "channels"),
        ],
    )
    def test_solid_default(self, data, kwargs, err, match):
        with pytest.raises(err, match=match):
            solid_default(data, **kwargs)

    def test_data_must_be_a_split(self):
        with pytest.raises(TypeError, match="data"):
            solid_default(object())

    def test_needs_a_validation_set(self):
        with pytest.raises(ValueError, match="validation"):
            solid_default(digits_split(60, 0))

    def test_shift_rotate_needs_images(self, data):
        from dataclasses import replace

        flat = replace(
            data,
            x_train=data.x_train.flatten(1),
            x_val=data.x_val.flatten(1),
            x_test=data.x_test.flatten(1),
        )
        with pytest.raises(ValueError, match="augment"):
            solid_default(flat, model="mlp")
        run = solid_default(flat, model="mlp", augment=None, hidden=8, epochs=1)  # fine without
        assert run.settings["augment"] == "none"

    @pytest.mark.parametrize(
        "kwargs, match", [({"model": "rnn"}, "model"), ({"epochs": 0}, "epochs")]
    )
    def test_no_regularization(self, data, kwargs, match):
        with pytest.raises(ValueError, match=match):
            no_regularization(data, **kwargs)


# The experiments of the chapter that uses the recipe (regcourse.experiments.combining)
# are tested in tests/test_combining_experiments.py.
