"""Tests of regcourse.experiments.augmentation: the 1-D signal transforms for MNIST-1D,
their modules, the training loop with augmentation inside it, and the experiments
(aug_gallery, aug_strength, lambda_histograms)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from matplotlib.figure import Figure

from regcourse import augment as A
from regcourse.experiments import run
from regcourse.experiments.augmentation import (
    GaussianNoise1d,
    RandomNegate1d,
    RandomScale1d,
    RandomShift1d,
    aug_strength,
    fit_augmented,
    gaussian_noise,
    lambda_histograms,
    mnist1d_recipe,
    mnist1d_templates,
    random_negate,
    random_scale,
    random_shift,
    shift,
    signal_augment,
    signal_figure,
)
from regcourse.experiments.batch_norm import fit, subset
from regcourse.models import mnist1d_model


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


class TestShift:
    def test_equals_torch_roll_row_by_row(self):
        x = torch.randn(7, 11, generator=gen(1), dtype=torch.float64)
        shifts = torch.tensor([0, 1, -1, 11, -12, 25, 5])
        want = torch.stack([torch.roll(r, int(k)) for r, k in zip(x, shifts)])
        assert torch.equal(shift(x, shifts), want)

    def test_channels_layout_shifts_every_channel_alike(self):
        x = torch.randn(3, 2, 9, generator=gen(2))
        shifts = torch.tensor([2, -3, 4])
        want = torch.stack([torch.roll(r, int(k), dims=-1) for r, k in zip(x, shifts)])
        assert torch.equal(shift(x, shifts), want)

    @pytest.mark.parametrize(
        "x, shifts, exc, match",
        [
            (
                torch.zeros(2, 5),
                torch.tensor([1.0, 2.0]),
                TypeError,
                "shifts must be an int64 tensor",
            ),
            (torch.zeros(2, 5), [1, 2], TypeError, "shifts must be an int64 tensor"),
            (
                torch.zeros(2, 5),
                torch.tensor([1, 2, 3]),
                ValueError,
                r"shifts must have shape \(2,\)",
            ),
            (torch.zeros(5), torch.tensor([1]), ValueError, "x"),
        ],
    )
    def test_rejects(self, x, shifts, exc, match):
        with pytest.raises(exc, match=match):
            shift(x, shifts)


class TestRandomTransforms:
    def test_random_shift_draws_every_shift_in_range_about_equally(self):
        n, k = 22_000, 5
        x = torch.arange(40.0).repeat(n, 1)
        out, shifts = random_shift(x, k, gen(3), return_shifts=True)
        assert torch.equal(out, shift(x, shifts))
        counts = torch.bincount(shifts + k, minlength=2 * k + 1).double()
        p = 1 / (2 * k + 1)
        se = math.sqrt(n * p * (1 - p))
        assert shifts.min() == -k and shifts.max() == k
        assert ((counts - n * p).abs() < 5 * se).all()

    def test_zero_shift_and_zero_strengths_are_the_identity(self):
        x = torch.randn(4, 10, generator=gen(4))
        assert torch.equal(random_shift(x, 0, gen()), x)
        assert torch.equal(random_scale(x, 0.0, gen()), x)
        assert torch.equal(gaussian_noise(x, 0.0, gen()), x)
        assert torch.equal(random_negate(x, 0.0, gen()), x)
        assert torch.equal(random_negate(x, 1.0, gen()), -x)

    def test_reproducible_from_the_generator(self):
        x = torch.randn(6, 10, generator=gen(5))
        for f, arg in (
            (random_shift, 3),
            (random_scale, 0.2),
            (gaussian_noise, 0.1),
            (random_negate, 0.5),
        ):
            assert torch.equal(f(x, arg, gen(9)), f(x, arg, gen(9)))

    def test_random_scale_multiplies_each_signal_by_one_factor_in_range(self):
        x = torch.ones(5000, 8, dtype=torch.float64)
        out = random_scale(x, 0.2, gen(6))
        factors = out[:, 0]
        assert torch.equal(out, factors[:, None].expand_as(out))
        assert factors.min() >= 0.8 and factors.max() <= 1.2
        assert abs(factors.mean().item() - 1.0) < 5 * 0.4 / math.sqrt(12 * 5000)

    def test_gaussian_noise_has_the_asked_standard_deviation(self):
        x = torch.zeros(2000, 40, dtype=torch.float64)
        noise = gaussian_noise(x, 0.3, gen(7))
        n = noise.numel()
        assert abs(noise.std().item() - 0.3) < 5 * 0.3 / math.sqrt(2 * n)
        assert noise.dtype == torch.float64

    def test_random_negate_flips_about_p_of_the_signals(self):
        x = torch.ones(10_000, 3)
        out = random_negate(x, 0.3, gen(8))
        flipped = (out[:, 0] < 0).double()
        assert torch.equal(out, out[:, :1].expand_as(out))
        assert abs(flipped.mean().item() - 0.3) < 5 * math.sqrt(0.3 * 0.7 / 10_000)

    @pytest.mark.parametrize(
        "call, exc, match",
        [
            (
                lambda: random_shift(torch.zeros(2, 4), -1),
                ValueError,
                r"max_shift must be >= 0, got -1",
            ),
            (
                lambda: random_shift(torch.zeros(2, 4), 1.5),
                TypeError,
                "max_shift must be an integer",
            ),
            (
                lambda: random_scale(torch.zeros(2, 4), 1.0),
                ValueError,
                r"max_change must be in \[0, 1\)",
            ),
            (lambda: gaussian_noise(torch.zeros(2, 4), -0.1), ValueError, "std must be >= 0"),
            (lambda: random_negate(torch.zeros(2, 4), 1.5), ValueError, r"p must be in \[0, 1\]"),
            (lambda: random_negate(torch.zeros(2, 4), 0.5, generator=3), TypeError, "generator"),
            (lambda: random_scale([[1.0]], 0.1), TypeError, "x"),
        ],
    )
    def test_rejects(self, call, exc, match):
        with pytest.raises(exc, match=match):
            call()


class TestModules:
    @pytest.mark.parametrize(
        "module, text",
        [
            (RandomShift1d(3), "RandomShift1d(max_shift=3)"),
            (RandomScale1d(0.2), "RandomScale1d(max_change=0.2)"),
            (GaussianNoise1d(0.05), "GaussianNoise1d(std=0.05)"),
            (RandomNegate1d(0.5), "RandomNegate1d(p=0.5)"),
        ],
    )
    def test_train_mode_transforms_eval_mode_is_the_identity(self, module, text):
        assert repr(module) == text
        x = torch.randn(64, 12, generator=gen(10))
        g = gen(11)
        assert not torch.equal(module.train()(x, g), x)
        state = g.get_state()
        assert module.eval()(x, g) is x
        assert torch.equal(g.get_state(), state)  # no random numbers drawn in eval mode

    def test_signal_augment_composes_the_nonzero_steps(self):
        assert signal_augment() is None
        pipeline = signal_augment(max_shift=2, max_scale=0.1, noise_std=0.0, negate_p=0.5)
        assert [type(s) for s in pipeline.steps] == [RandomShift1d, RandomScale1d, RandomNegate1d]
        assert isinstance(pipeline, A.Augment)
        x, y = torch.randn(8, 10, generator=gen(12)), torch.arange(8)
        xa, ya = pipeline(x, y, gen(13))
        assert xa.shape == x.shape and torch.equal(ya, y)

    @pytest.mark.parametrize(
        "kwargs, match",
        [({"max_shift": -2}, "max_shift"), ({"max_scale": 1.0}, "max_scale"),
         ({"noise_std": -1.0}, "noise_std"), ({"negate_p": 2.0}, "negate_p")],
    )  # fmt: skip
    def test_signal_augment_rejects(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            signal_augment(**kwargs)


@pytest.fixture(scope="module")
def tiny():
    return subset(64)


class TestFitAugmented:
    def test_without_augmentation_it_is_the_batch_norm_chapters_fit(self, tiny):
        a, b = mnist1d_model("mlp", seed=1), mnist1d_model("mlp", seed=1)
        acc_a = fit_augmented(a, tiny, None, epochs=2, batch_size=16, seed=1)
        acc_b = fit(b, tiny, epochs=2, batch_size=16, seed=1)
        assert acc_a == acc_b
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))

    def test_equals_the_loop_written_out(self, tiny):
        import torch.nn.functional as F

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            model = mnist1d_model("mlp", seed=2)
            augment = signal_augment(max_shift=3)
            optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
            g = gen(2)
            for _ in range(2):
                model.train()
                for idx in torch.randperm(64, generator=g).split(16):
                    xb, yb = augment(tiny.x_train[idx], tiny.y_train[idx], g)
                    loss = F.cross_entropy(model(xb), yb)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
        finally:
            torch.set_num_threads(threads)
        twin = mnist1d_model("mlp", seed=2)
        fit_augmented(twin, tiny, signal_augment(max_shift=3), epochs=2, batch_size=16, seed=2)
        assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters()))

    def test_switches_the_pipeline_on_for_training_and_off_after(self, tiny):
        used = signal_augment(max_shift=4).eval()  # e.g. left in eval mode by an earlier loop
        a, b = mnist1d_model("mlp", seed=0), mnist1d_model("mlp", seed=0)
        assert fit_augmented(a, tiny, used, epochs=1, batch_size=16) == fit_augmented(
            b, tiny, signal_augment(max_shift=4), epochs=1, batch_size=16
        )
        assert not used.training and not a.training

    def test_augmentation_changes_the_result(self, tiny):
        a, b = mnist1d_model("mlp", seed=0), mnist1d_model("mlp", seed=0)
        fit_augmented(a, tiny, None, epochs=1, batch_size=16)
        fit_augmented(b, tiny, signal_augment(max_shift=4), epochs=1, batch_size=16)
        assert not torch.equal(a[1].weight, b[1].weight)

    @pytest.mark.parametrize(
        "augment, kwargs, exc, match",
        [
            ("shift", {}, TypeError, "augment must be callable or None, got str"),
            (None, {"data": "signals"}, TypeError, "data must be a regcourse.data.Split"),
            (None, {"epochs": 0}, ValueError, "epochs must be >= 1"),
            (None, {"lr": 0.0}, ValueError, "lr must be > 0"),
        ],
    )
    def test_rejects(self, tiny, augment, kwargs, exc, match):
        data = kwargs.pop("data", tiny)
        with pytest.raises(exc, match=match):
            fit_augmented(mnist1d_model("mlp"), data, augment, **kwargs)


class TestMnist1dRecipe:
    def test_the_generators_arguments(self):
        recipe = mnist1d_recipe()
        assert recipe["final_seq_length"] == 40 and recipe["template_len"] == 12
        assert "url" not in recipe and recipe["max_translation"] > 0

    def test_negated_templates_are_other_digits(self):
        t = mnist1d_templates()
        assert t.shape == (10, 12) and t.dtype == torch.float64
        corr = torch.corrcoef(torch.cat([-t, t]))[:10, 10:]
        assert corr[0, 6] > 0.999 and corr[3, 8] > 0.999  # -0 is a 6, -3 is an 8


TINY = dict(seeds=2, n_train=64, epochs=1, batch_size=16)


class TestAugStrength:
    def test_rows_summary_and_claims(self):
        res = aug_strength(max_shifts="0,2,8", **TINY)
        arms = ["none", "shift <= 2", "shift <= 8", "negation (invalid)"]
        assert [r["augmentation"] for r in res.rows] == arms * 2
        assert [r["seed"] for r in res.rows] == [0] * 4 + [1] * 4
        for row in res.rows:
            assert row["gap"] == pytest.approx(row["train_acc"] - row["test_acc"])
        assert list(res.extra["summary"]) == arms and res.extra["best"] in arms[:3]
        assert len(res.claims) == 5 and all(isinstance(v, bool) for v in res.claims.values())
        assert isinstance(res.figure, Figure)

    def test_each_arm_is_fit_augmented_with_its_pipeline(self):
        res = aug_strength(max_shifts="0,3", invalid=False, **TINY)
        data = subset(64)
        for row in res.rows:
            model = mnist1d_model("mlp", seed=row["seed"])
            augment = signal_augment(max_shift=row["max_shift"])
            accs = fit_augmented(model, data, augment, epochs=1, batch_size=16, seed=row["seed"])
            assert accs == (row["train_acc"], row["test_acc"])

    def test_cnn(self):
        res = aug_strength(max_shifts="0,2", invalid=False, seeds=1, n_train=32, epochs=1,
                           batch_size=16, model="cnn")  # fmt: skip
        assert len(res.rows) == 2 and res.options["model"] == "cnn"

    @pytest.mark.parametrize(
        "options, exc, match",
        [
            (dict(max_shifts="2,4"), ValueError, "max_shifts must start with 0"),
            (dict(max_shifts="0,x"), ValueError, "max_shifts must be comma-separated integers"),
            (dict(model="resnet"), ValueError, "model"),
            (dict(seeds=0), ValueError, "seeds must be >= 1"),
            (dict(invalid=1), TypeError, "invalid"),
        ],
    )
    def test_bad_options(self, options, exc, match):
        with pytest.raises(exc, match=match):
            aug_strength(**options)

    def test_cli_writes_table_and_figure(self, tmp_path):
        from regcourse.__main__ import main

        args = ["run", "aug_strength", "--out", str(tmp_path), "--no-progress", "--seeds", "1"]
        args += ["--n-train", "32", "--epochs", "1", "--max-shifts", "0,2", "--invalid", "false"]
        assert main(args) == 0
        payload = json.loads((tmp_path / "aug_strength.json").read_text())
        assert [r["augmentation"] for r in payload["rows"]] == ["none", "shift <= 2"]
        assert (tmp_path / "aug_strength.png").stat().st_size > 0


class TestGalleryAndHistograms:
    def test_aug_gallery(self):
        res = run("aug_gallery", size=32, seed=1)
        assert res.all_claims_hold, res.claims
        assert len(res.rows) == 8 and {"transform", "changed_fraction"} <= set(res.rows[0])
        cm = res.extra["cutmix"]
        assert cm["counted_fraction"] == pytest.approx(1 - cm["lam"], abs=1e-9)
        assert res.figure is not None

    def test_aug_gallery_bad_option(self):
        with pytest.raises(ValueError, match="photo"):
            run("aug_gallery", photo="cat.jpg")
        with pytest.raises(ValueError, match="mixup_alpha"):
            run("aug_gallery", mixup_alpha=0.0)

    def test_lambda_histograms(self):
        fig, samples = lambda_histograms((0.2, 2.0), n=500, seed=1)
        assert set(samples) == {0.2, 2.0} and all(len(v) == 500 for v in samples.values())
        assert samples[0.2].var() > samples[2.0].var()  # 1/5.6 vs 1/20
        assert isinstance(fig, Figure) and len(fig.axes) == 2

    def test_signal_figure(self):
        versions = {"a": torch.zeros(3, 40), "b": torch.ones(3, 40)}
        fig = signal_figure(versions, ["x", "y", "z"], ncols=2)
        assert isinstance(fig, Figure) and len(fig.axes) == 4
        assert [len(ax.lines) for ax in fig.axes] == [2, 2, 2, 0]

    @pytest.mark.parametrize(
        "signals, titles, exc, match",
        [
            ({}, ["x"], TypeError, "signals must be a non-empty dict"),
            ({"a": torch.zeros(2, 40)}, ["x"], ValueError, r"one signal per title \(1\)"),
            ({"a": torch.zeros(40)}, ["x"], ValueError, "signals\\['a'\\]"),
        ],
    )
    def test_signal_figure_rejects(self, signals, titles, exc, match):
        with pytest.raises(exc, match=match):
            signal_figure(signals, titles)
