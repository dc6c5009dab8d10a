"""One table of bad inputs across the whole public API.

Every entry must be answered at once by a ``ValueError`` or ``TypeError`` whose
message names the offending argument — never an obscure shape error deep inside
torch, and never a silent NaN. The per-module test files hold more cases; this
sweep makes sure no module was left out.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from regcourse import (
    augment,
    data,
    depth,
    dropout,
    early_stopping,
    models,
    normalization,
    penalties,
    smoothing,
    training,
)

X = torch.randn(4, 5)
IMG = torch.rand(4, 3, 8, 8)
Y = torch.tensor([0, 1, 2, 1])
W = torch.randn(3)


class _Split:
    x_train = torch.randn(8, 1, 8, 8)
    y_train = torch.zeros(8, dtype=torch.int64)
    x_val = torch.randn(4, 1, 8, 8)
    y_val = torch.zeros(4, dtype=torch.int64)


def _bn_call(**overrides):
    args = dict(x=X, running_mean=torch.zeros(5), running_var=torch.ones(5), training=True)
    args.update(overrides)
    return normalization.batch_norm(**args)


CASES = [
    # --- penalties -------------------------------------------------------------
    ("l2_penalty negative lam", lambda: penalties.l2_penalty(W, -0.1), ValueError, "lam"),
    ("l2_grad NaN lam", lambda: penalties.l2_grad(W, math.nan), ValueError, "lam"),
    ("l1_grad list w", lambda: penalties.l1_grad([1.0, 2.0], 0.1), TypeError, "w"),
    (
        "l1_penalty int tensor",
        lambda: penalties.l1_penalty(torch.tensor([1, 2]), 0.1),
        TypeError,
        "w",
    ),
    ("sgd_step zero lr", lambda: penalties.sgd_step(W, W, 0.0, 0.1), ValueError, "lr"),
    ("sgd_step negative lr", lambda: penalties.sgd_step(W, W, -1.0, 0.1), ValueError, "lr"),
    (
        "sgd_step unknown penalty",
        lambda: penalties.sgd_step(W, W, 0.1, 0.1, penalty="l3"),
        ValueError,
        "penalty",
    ),
    (
        "sgd_step shape mismatch",
        lambda: penalties.sgd_step(W, torch.randn(4), 0.1, 0.1),
        ValueError,
        "grad",
    ),
    (
        "sgd_step inf grad",
        lambda: penalties.sgd_step(W, torch.tensor([1.0, math.inf, 0.0]), 0.1, 0.1),
        ValueError,
        "grad",
    ),
    (
        "l1_prox_step negative lam",
        lambda: penalties.l1_prox_step(W, W, 0.1, -1.0),
        ValueError,
        "lam",
    ),
    (
        "adamw_step negative lam",
        lambda: penalties.adamw_step(W, W, penalties.adam_init(W), lam=-0.01),
        ValueError,
        "lam",
    ),
    (
        "adam_l2_step zero lr",
        lambda: penalties.adam_l2_step(W, W, penalties.adam_init(W), lr=0.0),
        ValueError,
        "lr",
    ),
    # --- dropout ---------------------------------------------------------------
    ("dropout p = 1", lambda: dropout.dropout(X, 1.0), ValueError, "p"),
    ("dropout p < 0", lambda: dropout.dropout(X, -0.1), ValueError, "p"),
    ("dropout p NaN", lambda: dropout.dropout(X, math.nan), ValueError, "p"),
    ("dropout p str", lambda: dropout.dropout(X, "0.5"), TypeError, "p"),
    (
        "dropout int tensor",
        lambda: dropout.dropout(torch.ones(3, dtype=torch.int64), 0.5),
        TypeError,
        "x",
    ),
    ("dropout numpy input", lambda: dropout.dropout(X.numpy(), 0.5), TypeError, "x"),
    ("Dropout module p = 1.5", lambda: dropout.Dropout(1.5), ValueError, "p"),
    (
        "apply_dropout_mask shape",
        lambda: dropout.apply_dropout_mask(X, torch.ones(4, 4), 0.5),
        ValueError,
        "mask",
    ),
    (
        "apply_dropout_mask non-binary",
        lambda: dropout.apply_dropout_mask(X, torch.full((4, 5), 0.5), 0.5),
        ValueError,
        "mask",
    ),
    (
        "dropout generator wrong type",
        lambda: dropout.dropout(X, 0.5, generator=0),
        TypeError,
        "generator",
    ),
    ("DropConnectLinear p = 1", lambda: dropout.DropConnectLinear(5, 3, p=1.0), ValueError, "p"),
    # --- smoothing ---------------------------------------------------------------
    ("smooth_targets eps > 1", lambda: smoothing.smooth_targets(Y, 3, eps=1.5), ValueError, "eps"),
    ("smooth_targets eps < 0", lambda: smoothing.smooth_targets(Y, 3, eps=-0.1), ValueError, "eps"),
    (
        "smooth_targets K < 2",
        lambda: smoothing.smooth_targets(torch.tensor([0]), 1),
        ValueError,
        "num_classes",
    ),
    (
        "smooth_targets target >= K",
        lambda: smoothing.smooth_targets(torch.tensor([3]), 3),
        ValueError,
        "target",
    ),
    (
        "smooth_targets target < 0",
        lambda: smoothing.smooth_targets(torch.tensor([-1]), 3),
        ValueError,
        "target",
    ),
    (
        "smooth_targets float target",
        lambda: smoothing.smooth_targets(torch.tensor([1.0]), 3),
        TypeError,
        "target",
    ),
    (
        "ce_from_probs negative",
        lambda: smoothing.cross_entropy_from_probs(
            torch.tensor([[-0.1, 0.6, 0.5]]), torch.tensor([[0.0, 1.0, 0.0]])
        ),
        ValueError,
        "probs",
    ),
    (
        "ce_from_probs not summing to 1",
        lambda: smoothing.cross_entropy_from_probs(
            torch.tensor([[0.2, 0.2, 0.2]]), torch.tensor([[0.0, 1.0, 0.0]])
        ),
        ValueError,
        "probs",
    ),
    (
        "ce_from_probs shape mismatch",
        lambda: smoothing.cross_entropy_from_probs(
            torch.tensor([[0.2, 0.8]]), torch.tensor([[0.0, 1.0, 0.0]])
        ),
        ValueError,
        "probs|target_dist",
    ),
    (
        "smoothed_ce batch mismatch",
        lambda: smoothing.smoothed_cross_entropy(torch.randn(4, 3), torch.tensor([0, 1])),
        ValueError,
        "target|logits",
    ),
    (
        "smoothed_ce NaN logits",
        lambda: smoothing.smoothed_cross_entropy(
            torch.full((2, 3), math.nan), torch.tensor([0, 1])
        ),
        ValueError,
        "logits",
    ),
    (
        "smoothed_ce bad reduction",
        lambda: smoothing.smoothed_cross_entropy(
            torch.randn(2, 3), torch.tensor([0, 1]), reduction="avg"
        ),
        ValueError,
        "reduction",
    ),
    # --- augmentation ------------------------------------------------------------
    ("hflip p > 1", lambda: augment.hflip(IMG, p=1.5), ValueError, "p"),
    ("hflip 2-D input", lambda: augment.hflip(torch.rand(8, 8)), ValueError, "x"),
    ("random_crop size too big", lambda: augment.random_crop(IMG, 20), ValueError, "size"),
    ("random_crop size 0", lambda: augment.random_crop(IMG, 0), ValueError, "size"),
    (
        "rotate NaN degrees",
        lambda: augment.rotate(IMG, max_degrees=math.nan),
        ValueError,
        "max_degrees",
    ),
    ("cutout size too big", lambda: augment.cutout(IMG, 9), ValueError, "size"),
    ("mixup alpha 0", lambda: augment.mixup(IMG, Y, 3, alpha=0.0), ValueError, "alpha"),
    (
        "mixup label out of range",
        lambda: augment.mixup(IMG, torch.tensor([0, 1, 2, 3]), 3),
        ValueError,
        "y",
    ),
    ("mixup batch mismatch", lambda: augment.mixup(IMG, torch.tensor([0, 1]), 3), ValueError, "y"),
    (
        "cutmix num_classes 1",
        lambda: augment.cutmix(IMG, torch.zeros(4, dtype=torch.int64), 1),
        ValueError,
        "num_classes",
    ),
    ("cutmix negative alpha", lambda: augment.cutmix(IMG, Y, 3, alpha=-1.0), ValueError, "alpha"),
    (
        "mixup int images",
        lambda: augment.mixup(torch.ones(4, 3, 8, 8, dtype=torch.uint8), Y, 3),
        TypeError,
        "x",
    ),
    # --- batch norm --------------------------------------------------------------
    ("batch_norm negative eps", lambda: _bn_call(eps=-1e-5), ValueError, "eps"),
    ("batch_norm momentum > 1", lambda: _bn_call(momentum=1.5), ValueError, "momentum"),
    (
        "batch_norm running_mean shape",
        lambda: _bn_call(running_mean=torch.zeros(4)),
        ValueError,
        "running_mean",
    ),
    (
        "batch_norm one value per channel",
        lambda: _bn_call(x=torch.randn(1, 5)),
        ValueError,
        "per channel",
    ),
    ("BatchNorm1d zero features", lambda: normalization.BatchNorm1d(0), ValueError, "num_features"),
    # --- early stopping ----------------------------------------------------------
    (
        "EarlyStopping patience 0",
        lambda: early_stopping.EarlyStopping(patience=0),
        ValueError,
        "patience",
    ),
    (
        "EarlyStopping patience 2.5",
        lambda: early_stopping.EarlyStopping(patience=2.5),
        TypeError,
        "patience",
    ),
    (
        "EarlyStopping negative min_delta",
        lambda: early_stopping.EarlyStopping(min_delta=-0.1),
        ValueError,
        "min_delta",
    ),
    (
        "EarlyStopping unknown mode",
        lambda: early_stopping.EarlyStopping(mode="lowest"),
        ValueError,
        "mode",
    ),
    (
        "EarlyStopping NaN value",
        lambda: early_stopping.EarlyStopping().step(math.nan),
        ValueError,
        "value",
    ),
    (
        "simulate patience 0",
        lambda: early_stopping.simulate([1.0, 0.5], patience=0),
        ValueError,
        "patience",
    ),
    # --- stochastic depth ----------------------------------------------------------
    ("drop_path p = 1", lambda: depth.drop_path(X, 1.0), ValueError, "p"),
    ("DropPath p < 0", lambda: depth.DropPath(-0.2), ValueError, "p"),
    (
        "linear_decay_survival 0 blocks",
        lambda: depth.linear_decay_survival(0),
        ValueError,
        "num_blocks",
    ),
    (
        "linear_decay_survival survival 0",
        lambda: depth.linear_decay_survival(4, 0.0),
        ValueError,
        "survival_last",
    ),
    # --- data, models, training --------------------------------------------------
    ("digits_split n_train too small", lambda: data.digits_split(n_train=5), ValueError, "n_train"),
    (
        "digits_split label_noise 1",
        lambda: data.digits_split(label_noise=1.0),
        ValueError,
        "label_noise",
    ),
    ("sample_photo unknown name", lambda: data.sample_photo("cat.jpg"), ValueError, "name"),
    ("MLP dropout 1", lambda: models.MLP(dropout=1.0), ValueError, "dropout"),
    ("build_model unknown kind", lambda: models.build_model("resnet"), ValueError, "kind"),
    (
        "make_optimizer unknown",
        lambda: training.make_optimizer(nn.Linear(2, 2), "rmsprop"),
        ValueError,
        "optimizer",
    ),
    (
        "make_optimizer negative weight_decay",
        lambda: training.make_optimizer(nn.Linear(2, 2), weight_decay=-1.0),
        ValueError,
        "weight_decay",
    ),
    (
        "train epochs 0",
        lambda: training.train(nn.Linear(64, 10), _Split(), epochs=0),
        ValueError,
        "epochs",
    ),
    (
        "train label_smoothing 2",
        lambda: training.train(nn.Linear(64, 10), _Split(), label_smoothing=2.0),
        ValueError,
        "label_smoothing",
    ),
    (
        "train data without val",
        lambda: training.train(nn.Linear(64, 10), object()),
        TypeError,
        "data",
    ),
    (
        "evaluate float labels",
        lambda: training.evaluate(nn.Flatten(), torch.randn(2, 3), torch.tensor([0.0, 1.0])),
        TypeError,
        "y",
    ),
]


@pytest.mark.parametrize("call, exc, name", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_rejected_naming_the_argument(call, exc, name):
    with pytest.raises(exc, match=name):
        call()


def test_the_sweep_covers_at_least_forty_inputs_and_every_module():
    assert len(CASES) >= 40
    modules = {
        "sgd_step",
        "dropout",
        "smooth",
        "mixup",
        "batch_norm",
        "EarlyStopping",
        "drop_path",
        "digits_split",
        "train ",
    }
    covered = " ".join(c[0] for c in CASES)
    assert all(m in covered for m in modules)


# ----------------------------------------------------------------------------------------
# Issue 13's findings, one by one: each bad input now fails clearly, and each legitimate
# input that used to be refused or to crash now works as torch's equivalent does.
# ----------------------------------------------------------------------------------------

ISSUE_13_REFUSED = [
    (
        "evaluate(batch_size=-5) returned (0.0, 0.0)",
        lambda: training.evaluate(
            nn.Flatten(), torch.randn(3, 4), torch.zeros(3, dtype=torch.long), batch_size=-5
        ),
        ValueError,
        r"batch_size must be >= 1, got -5",
    ),
    (
        "MLP(batch_norm='no') added batch norm",
        lambda: models.MLP(batch_norm="no"),
        TypeError,
        r"batch_norm must be a bool, got 'no' \(str\)",
    ),
    (
        "SmallCNN(batch_norm='False')",
        lambda: models.SmallCNN(batch_norm="False"),
        TypeError,
        r"batch_norm must be a bool",
    ),
    (
        "dropout(training='no')",
        lambda: dropout.dropout(X, 0.5, training="no"),
        TypeError,
        r"training must be a bool, got 'no'",
    ),
    (
        "BatchNorm1d(affine='yes')",
        lambda: normalization.BatchNorm1d(3, affine="yes"),
        TypeError,
        r"affine must be a bool",
    ),
    (
        "a float64 BatchNorm1d fed float32 silently returned float64",
        lambda: normalization.BatchNorm1d(5).double()(X),
        TypeError,
        r"mixed dtype: x is torch.float32 but weight is torch.float64",
    ),
    (
        "a float64 BatchNorm1d in eval mode fed float32",
        lambda: normalization.BatchNorm1d(5).double().eval()(X),
        TypeError,
        r"mixed dtype",
    ),
    (
        "mnist1d_split(layout='nlc')",
        lambda: data.mnist1d_split(layout="nlc"),
        ValueError,
        r"layout must be one of \['flat', 'ncl'\], got 'nlc'",
    ),
]


@pytest.mark.parametrize(
    "call, exc, match", [c[1:] for c in ISSUE_13_REFUSED], ids=[c[0] for c in ISSUE_13_REFUSED]
)
def test_issue_13_bad_input_refused(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


class TestIssue13Accepted:
    """Inputs that torch accepts, or that training meets in practice, work."""

    @pytest.mark.parametrize("n_train", [33, 65])
    def test_train_with_a_final_batch_of_one_and_batch_norm(self, n_train):
        split = data.digits_split(n_train, 20)
        net = models.build_model("mlp", hidden=16, batch_norm=True)
        history = training.train(net, split, epochs=1, batch_size=32)
        assert history.stopped_epoch == 1

    def test_solid_default_with_a_final_batch_of_one(self):
        from regcourse import recipe

        split = data.digits_split(33, 20)
        result = recipe.solid_default(split, epochs=1, batch_size=32, patience=None)
        assert 0.0 <= result.test_acc <= 1.0

    def test_mixup_tiny_alpha_gives_no_nan(self):
        x, y = torch.rand(64, 3, 4, 4), torch.arange(64) % 10
        xm, ym = augment.mixup(x, y, 10, alpha=1e-310, generator=torch.Generator().manual_seed(0))
        assert bool(torch.isfinite(xm).all()) and bool(torch.isfinite(ym).all())
        lam = augment.sample_beta(1e-310, 1e-310, (200,), torch.Generator().manual_seed(1))
        assert set(lam.tolist()) <= {0.0, 1.0} and 0 < lam.mean() < 1  # the alpha -> 0 limit

    @pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.uint8])
    def test_mixup_and_cutmix_accept_any_integer_labels(self, dtype):
        x, y = torch.rand(8, 3, 4, 4), torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])
        for fn in (augment.mixup, augment.cutmix):
            ref = fn(x, y, 8, generator=torch.Generator().manual_seed(0))
            got = fn(x, y.to(dtype), 8, generator=torch.Generator().manual_seed(0))
            assert torch.equal(ref[0], got[0]) and torch.equal(ref[1], got[1])

    def test_numpy_and_tensor_sizes(self):
        np = pytest.importorskip("numpy")
        assert dropout.dropout_mask(np.int64(3), 0.5).shape == (3,)
        assert dropout.dropout_mask((np.int64(2), torch.tensor(3)), 0.5).shape == (2, 3)
        assert models.MLP(np.int64(40), hidden=np.int64(8), depth=torch.tensor(1))(
            torch.randn(2, 40)
        ).shape == (2, 10)
        assert normalization.BatchNorm1d(np.int64(5))(X).shape == X.shape

    def test_numpy_and_tensor_betas(self):
        np = pytest.importorskip("numpy")
        w, g = torch.ones(3, dtype=torch.float64), torch.full((3,), 0.5, dtype=torch.float64)
        ref = penalties.adamw_step(w, g, penalties.adam_init(w), 0.1, 0.01, betas=(0.9, 0.999))
        for betas in (np.array([0.9, 0.999]), torch.tensor([0.9, 0.999]), [np.float64(0.9), 0.999]):
            got = penalties.adamw_step(w, g, penalties.adam_init(w), 0.1, 0.01, betas=betas)
            assert torch.equal(got[0], ref[0])

    def test_update_bn_sees_our_batch_norm(self):
        net = nn.Sequential(nn.Linear(5, 5), normalization.BatchNorm1d(5))
        torch.optim.swa_utils.update_bn([X + 3.0, X + 3.0], net)
        assert int(net[1].num_batches_tracked) == 2
        assert bool((net[1].running_mean.abs() > 0).any())

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
    def test_half_precision_in_same_dtype_out(self, dtype):
        assert normalization.BatchNorm1d(5)(X.to(dtype)).dtype == dtype
        assert normalization.LayerNorm(5)(X.to(dtype)).dtype == dtype


class TestIssue13CommandLine:
    """The command line checks --out before it runs anything (details in tests/test_cli.py)."""

    @pytest.fixture
    def never_run(self, monkeypatch):
        from regcourse import experiments

        def fail(*args, **kwargs):
            raise AssertionError("the experiment ran although --out was bad")

        monkeypatch.setattr(experiments, "run", fail)

    @pytest.mark.parametrize("kind", ["empty", "file", "under a file"])
    def test_bad_out_refused_before_running(self, kind, tmp_path, never_run, capsys):
        from regcourse.__main__ import main

        (tmp_path / "f").write_text("x")
        out = {
            "empty": "",
            "file": str(tmp_path / "f"),
            "under a file": str(tmp_path / "f" / "sub"),
        }[kind]
        assert main(["run", "core_problem", "--out", out, "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert "--out" in err and len(err.strip().splitlines()) == 1

    def test_nan_results_are_strict_json(self, tmp_path):
        import json

        from regcourse import experiments

        result = experiments.Result("zz_nan", {}, [{"acc": math.nan, "loss": math.inf}])
        (path,) = experiments.save(result, tmp_path)
        assert json.loads(path.read_text())["rows"] == [{"acc": None, "loss": None}]
