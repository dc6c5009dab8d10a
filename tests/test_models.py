"""Tests of regcourse.models: the MNIST-1D baselines, the norm factory, dropout options."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regcourse import normalization
from regcourse.data import mnist1d_split
from regcourse.dropout import Dropout, Dropout1d, Dropout2d
from regcourse.models import (
    MLP,
    CNN1d,
    LogisticRegression,
    SmallCNN,
    build_model,
    make_norm,
    mnist1d_model,
)
from regcourse.training import evaluate, minibatches, train_epoch


class PublishedConvBase(nn.Module):
    """``ConvBase`` of the mnist1d repository (notebooks/models.py), its print removed."""

    def __init__(self, output_size=10, channels=25, linear_in=125):
        super().__init__()
        self.conv1 = nn.Conv1d(1, channels, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.linear = nn.Linear(linear_in, output_size)

    def forward(self, x):
        x = x.view(-1, 1, x.shape[-1])
        h1 = self.conv1(x).relu()
        h2 = self.conv2(h1).relu()
        h3 = self.conv3(h2).relu()
        return self.linear(h3.view(h3.shape[0], -1))


def _modules(model, cls):
    return [m for m in model.modules() if isinstance(m, cls)]


class TestCNN1d:
    def test_matches_published_architecture(self):
        torch.manual_seed(7)
        ref = PublishedConvBase()
        ours = build_model("cnn1d", seed=7)
        # the same layers created in the same order: the same initial weights, bit for bit
        ref_params = [p for _, p in ref.named_parameters()]
        our_params = list(ours.parameters())
        assert [p.shape for p in ref_params] == [p.shape for p in our_params]
        assert all(torch.equal(a, b) for a, b in zip(ref_params, our_params))
        x = torch.randn(6, 40, dtype=torch.float32)
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)

    def test_accepts_flat_and_ncl(self):
        net = CNN1d()
        x = torch.randn(3, 40)
        assert torch.equal(net(x), net(x.unsqueeze(1)))

    def test_bad_input_shape(self):
        with pytest.raises(
            ValueError, match=r"x must have shape \(N, 1, L\) or \(N, L\), got \(3, 2, 40\)"
        ):
            CNN1d()(torch.randn(3, 2, 40))

    def test_other_length(self):
        assert CNN1d(length=72)(torch.randn(2, 72)).shape == (2, 10)

    @pytest.mark.parametrize(
        "norm, cls",
        [
            ("batch", nn.BatchNorm1d),
            ("regcourse_batch", normalization.BatchNorm1d),
            ("layer", nn.GroupNorm),
            ("group", nn.GroupNorm),
        ],
    )
    def test_norm_after_each_conv(self, norm, cls):
        net = CNN1d(norm=norm)
        assert len(_modules(net, cls)) == 3
        layers = list(net)
        convs = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv1d)]
        assert all(isinstance(layers[i + 1], cls) for i in convs)
        assert net(torch.randn(4, 40)).shape == (4, 10)

    def test_layer_norm_is_one_group(self):
        assert all(m.num_groups == 1 for m in _modules(CNN1d(norm="layer"), nn.GroupNorm))
        assert all(m.num_groups == 5 for m in _modules(CNN1d(norm="group"), nn.GroupNorm))

    def test_channel_dropout_whole_channels(self):
        net = CNN1d(channel_dropout=0.5)
        assert len(_modules(net, Dropout1d)) == 3
        net.train()
        drop = _modules(net, Dropout1d)[0]
        h = torch.ones(8, 25, 19)
        out = drop(h)
        per_channel = (out == 0).all(-1) | (out == 2).all(-1)
        assert bool(per_channel.all())

    def test_eval_is_deterministic(self):
        net = CNN1d(dropout=0.3, channel_dropout=0.3).eval()
        x = torch.randn(5, 40)
        assert torch.equal(net(x), net(x))

    def test_defaults_have_no_regularizers(self):
        net = CNN1d()
        assert not _modules(net, Dropout) and not _modules(net, nn.GroupNorm)


class TestMLPOptions:
    def test_mnist1d_sizes(self):
        net = mnist1d_model("mlp")
        linears = _modules(net, nn.Linear)
        assert [(m.in_features, m.out_features) for m in linears] == [
            (40, 100),
            (100, 100),
            (100, 10),
        ]
        assert (
            all(isinstance(m, nn.ReLU) for m in _modules(net, nn.ReLU))
            and len(_modules(net, nn.ReLU)) == 2
        )

    @pytest.mark.parametrize(
        "norm, cls",
        [
            ("batch", nn.BatchNorm1d),
            ("layer", nn.LayerNorm),
            ("group", nn.GroupNorm),
            ("regcourse_batch", normalization.BatchNorm1d),
        ],
    )
    def test_norm_before_activation(self, norm, cls):
        layers = list(MLP(40, hidden=100, norm=norm))
        idx = [i for i, m in enumerate(layers) if isinstance(m, cls)]
        assert len(idx) == 2 and all(isinstance(layers[i + 1], nn.ReLU) for i in idx)

    def test_batch_norm_flag_is_torch_batch_norm(self):
        a, b = MLP(batch_norm=True), MLP(norm="batch")
        assert [type(m) for m in a] == [type(m) for m in b]

    def test_callable_norm(self):
        net = MLP(40, hidden=8, norm=lambda c: nn.LayerNorm(c, elementwise_affine=False))
        norms = _modules(net, nn.LayerNorm)
        assert len(norms) == 2 and not norms[0].elementwise_affine

    def test_dropout_after_activation(self):
        layers = list(MLP(40, hidden=8, dropout=0.2))
        idx = [i for i, m in enumerate(layers) if isinstance(m, Dropout)]
        assert len(idx) == 2 and all(isinstance(layers[i - 1], nn.ReLU) for i in idx)

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            (dict(batch_norm="no"), TypeError, r"batch_norm must be a bool, got 'no' \(str\)"),
            (dict(batch_norm=1), TypeError, r"batch_norm must be a bool"),
            (dict(norm=True), TypeError, r"norm must be None, a str or a callable"),
            (
                dict(norm="instance"),
                ValueError,
                r"norm must be None, a callable or one of .*got 'instance'",
            ),
            (dict(norm=lambda c: 3), TypeError, r"norm\(256\) must return an nn.Module, got int"),
            (dict(batch_norm=True, norm="layer"), ValueError, r"batch_norm=True or norm, not both"),
            (dict(dropout=1.0), ValueError, r"dropout must be in \[0, 1\)"),
        ],
    )
    def test_bad_input(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            MLP(**kwargs)

    def test_numpy_sizes_accepted(self):
        net = MLP(
            np.int64(40), hidden=np.int64(16), depth=torch.tensor(2), batch_norm=np.bool_(True)
        )
        assert net(torch.randn(3, 40)).shape == (3, 10)


class TestSmallCNNOptions:
    def test_batch_norm_string_refused(self):
        with pytest.raises(TypeError, match=r"batch_norm must be a bool, got 'no'"):
            SmallCNN(batch_norm="no")

    def test_channel_dropout_2d(self):
        net = SmallCNN(channel_dropout=0.1)
        assert len(_modules(net, Dropout2d)) == 2

    def test_group_norm(self):
        net = SmallCNN(norm="group")
        assert len(_modules(net, nn.GroupNorm)) == 2
        assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)


class TestMakeNorm:
    def test_none_is_identity(self):
        assert isinstance(make_norm(None, 4), nn.Identity)

    def test_batch_2d(self):
        assert isinstance(make_norm("batch", 4, spatial_dims=2), nn.BatchNorm2d)

    @pytest.mark.parametrize(
        "name, cls, dims",
        [
            ("regcourse_layer", normalization.LayerNorm, 0),
            ("regcourse_layer", normalization.GroupNorm, 1),
            ("regcourse_group", normalization.GroupNorm, 2),
            ("regcourse_batch", normalization.BatchNorm2d, 2),
        ],
    )
    def test_ours(self, name, cls, dims):
        assert type(make_norm(name, 10, spatial_dims=dims)) is cls

    def test_group_count_divides(self):
        assert make_norm("group", 100).num_groups == 5
        assert make_norm("group", 64).num_groups == 8
        assert make_norm("group", 7).num_groups == 7

    @pytest.mark.parametrize(
        "args, kwargs, error, match",
        [
            ((None, 0), {}, ValueError, r"num_features must be >= 1"),
            (("batch", 4), dict(spatial_dims=3), ValueError, r"spatial_dims must be in \[0, 2\]"),
            ((3, 4), {}, TypeError, r"norm must be None"),
        ],
    )
    def test_bad_input(self, args, kwargs, error, match):
        with pytest.raises(error, match=match):
            make_norm(*args, **kwargs)


class TestMnist1dModel:
    def test_kinds(self):
        assert isinstance(mnist1d_model("logistic"), LogisticRegression)
        assert isinstance(mnist1d_model("mlp"), MLP)
        assert isinstance(mnist1d_model("cnn"), CNN1d)

    def test_seeded(self):
        a, b = mnist1d_model("mlp", seed=3), mnist1d_model("mlp", seed=3)
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))

    def test_global_rng_untouched(self):
        torch.manual_seed(0)
        expected = torch.rand(3)
        torch.manual_seed(0)
        mnist1d_model("cnn", seed=5)
        assert torch.equal(torch.rand(3), expected)

    def test_kwargs_override(self):
        assert len(_modules(mnist1d_model("mlp", dropout=0.1), Dropout)) == 2

    def test_bad_kind(self):
        with pytest.raises(
            ValueError, match=r"kind must be one of \['cnn', 'logistic', 'mlp'\], got 'gru'"
        ):
            mnist1d_model("gru")

    def test_short_run_order(self):
        """After a short run with the benchmark's optimizer, test accuracy: logistic < MLP < CNN."""
        data = mnist1d_split()
        acc = {}
        for kind in ("logistic", "mlp", "cnn"):
            model = mnist1d_model(kind, seed=0)
            opt = torch.optim.Adam(model.parameters(), lr=1e-2)
            g = torch.Generator().manual_seed(0)
            for _ in range(8):
                train_epoch(
                    model, minibatches(data.x_train, data.y_train, 100, g), F.cross_entropy, opt
                )
            acc[kind] = evaluate(model, data.x_test, data.y_test)[1]
        assert acc["logistic"] < acc["mlp"] < acc["cnn"], acc
