"""Tests of regcourse.augment (the chapter's experiments: tests/test_augmentation_experiments.py)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from regcourse import augment as A
from regcourse.augment import (
    Augment,
    ColorJitter,
    CutMix,
    Cutout,
    Mixup,
    RandomCrop,
    RandomHFlip,
    RandomResizedCrop,
    RandomRotation,
)

DT = torch.float64
LUMA = torch.tensor([0.299, 0.587, 0.114], dtype=DT)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n=4, c=3, h=8, w=8, seed=0, dtype=torch.float32):
    """Random images in [0, 1] from a fixed generator (all pixels distinct almost surely)."""
    return torch.rand(n, c, h, w, generator=gen(seed), dtype=dtype)


# --------------------------------------------------------------------------- hflip
class TestHFlip:
    def test_shape_and_dtype(self):
        for dtype in (torch.float32, DT):
            x = images(dtype=dtype)
            out = A.hflip(x, generator=gen())
            assert out.shape == x.shape and out.dtype == dtype

    def test_single_image(self):
        x = images(1)[0]
        torch.testing.assert_close(A.hflip(x, p=1.0), x.flip(-1), rtol=0, atol=0)

    def test_p_one_flips_every_image(self):
        x = images()
        assert torch.equal(A.hflip(x, p=1.0), x[..., torch.arange(7, -1, -1)])

    def test_flip_twice_is_identity(self):
        x = images()
        assert torch.equal(A.hflip(A.hflip(x, p=1.0), p=1.0), x)

    def test_p_zero_is_identity(self):
        x = images()
        assert torch.equal(A.hflip(x, p=0.0, generator=gen()), x)

    def test_each_image_is_either_kept_or_flipped(self):
        x = images(50)
        out = A.hflip(x, generator=gen(1))
        for a, b in zip(x, out):
            assert torch.equal(a, b) or torch.equal(a.flip(-1), b)

    def test_same_seed_same_output(self):
        x = images(20)
        assert torch.equal(A.hflip(x, generator=gen(3)), A.hflip(x, generator=gen(3)))

    def test_half_are_flipped(self):
        n, p = 4000, 0.5
        x = images(n, c=1, h=2, w=2, seed=5)
        flipped = (A.hflip(x, p=p, generator=gen(7)) != x).flatten(1).any(1).sum().item()
        se = math.sqrt(n * p * (1 - p))
        assert abs(flipped - n * p) < 5 * se

    def test_p_controls_the_rate(self):
        n, p = 4000, 0.2
        x = images(n, c=1, h=2, w=2, seed=5)
        flipped = (A.hflip(x, p=p, generator=gen(8)) != x).flatten(1).any(1).sum().item()
        assert abs(flipped - n * p) < 5 * math.sqrt(n * p * (1 - p))


# --------------------------------------------------------------------------- random_crop
class TestRandomCrop:
    def test_output_shape(self):
        assert A.random_crop(images(), 5, generator=gen()).shape == (4, 3, 5, 5)
        assert A.random_crop(images()[0], 5, padding=2, generator=gen()).shape == (3, 5, 5)

    def test_full_size_without_padding_is_identity(self):
        x = images()
        assert torch.equal(A.random_crop(x, 8, generator=gen()), x)

    def test_every_output_is_a_window_of_the_padded_image(self):
        x = images(10, c=2, h=6, w=7)
        out = A.random_crop(x, 6, padding=1, fill=-1.0, generator=gen(2))
        padded = F.pad(x, (1, 1, 1, 1), value=-1.0)
        for i in range(10):
            windows = [padded[i, :, t : t + 6, le : le + 6] for t in range(3) for le in range(4)]
            assert any(torch.equal(out[i], w) for w in windows)

    def test_shifts_cover_all_offsets(self):
        x = torch.arange(64.0).view(1, 1, 8, 8).expand(400, 1, 8, 8)
        out = A.random_crop(x, 8, padding=1, fill=-1.0, generator=gen(4))
        # the value at output (1, 1) tells the offset: input (1 + dt - 1, 1 + dl - 1)
        offsets = {int(v) for v in out[:, 0, 1, 1]}
        assert offsets == {r * 8 + c for r in range(3) for c in range(3)}

    def test_deterministic(self):
        x = images()
        assert torch.equal(
            A.random_crop(x, 6, 1, generator=gen(9)), A.random_crop(x, 6, 1, generator=gen(9))
        )


# --------------------------------------------------------------------------- random_resized_crop
class TestRandomResizedCrop:
    def test_shape_dtype_single(self):
        x = images(dtype=DT)
        out = A.random_resized_crop(x, generator=gen())
        assert out.shape == x.shape and out.dtype == DT
        assert A.random_resized_crop(x[0], generator=gen()).shape == x[0].shape

    def test_full_crop_is_identity(self):
        x = images(dtype=DT)
        out = A.random_resized_crop(x, scale=(1.0, 1.0), ratio=(1.0, 1.0), generator=gen())
        torch.testing.assert_close(out, x, rtol=0, atol=1e-12)

    def test_matches_torch_interpolate_of_the_box(self):
        x = images(6, h=10, w=12, dtype=DT)
        out, boxes = A.random_resized_crop(x, scale=(0.2, 0.7), generator=gen(3), return_boxes=True)
        for i, (t, le, h, w) in enumerate(boxes.tolist()):
            ref = F.interpolate(
                x[i : i + 1, :, t : t + h, le : le + w],
                size=(10, 12),
                mode="bilinear",
                align_corners=False,
            )[0]
            torch.testing.assert_close(out[i], ref, rtol=0, atol=1e-12)

    def test_boxes_inside_image_and_near_the_area_range(self):
        x = images(200, c=1, h=32, w=32)
        _, boxes = A.random_resized_crop(x, scale=(0.3, 0.6), generator=gen(1), return_boxes=True)
        t, le, h, w = boxes.T
        assert bool(
            (t >= 0).all() and (le >= 0).all() and (t + h <= 32).all() and (le + w <= 32).all()
        )
        frac = (h * w).double() / (32 * 32)
        # rounding each side to whole pixels moves the area by at most about one row and column
        assert frac.min() > 0.3 - 2 * 33 / 1024 and frac.max() < 0.6 + 2 * 33 / 1024

    def test_deterministic(self):
        x = images()
        assert torch.equal(
            A.random_resized_crop(x, generator=gen(5)), A.random_resized_crop(x, generator=gen(5))
        )


# --------------------------------------------------------------------------- rotation
class TestRotate:
    def test_zero_degrees_is_identity(self):
        x = images(dtype=DT)
        torch.testing.assert_close(A.rotate_by(x, 0.0), x, rtol=0, atol=1e-12)

    def test_max_degrees_zero_is_identity(self):
        x = images(dtype=DT)
        torch.testing.assert_close(A.rotate(x, 0.0, generator=gen()), x, rtol=0, atol=1e-12)

    def test_90_degrees_matches_rot90_in_the_interior(self):
        x = images(3, h=9, w=9, dtype=DT)
        out = A.rotate_by(x, 90.0)
        ref = torch.rot90(x, 1, dims=(-2, -1))
        torch.testing.assert_close(out[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], rtol=0, atol=1e-10)

    def test_minus_90_matches_rot90_clockwise(self):
        x = images(2, h=6, w=6, dtype=DT)
        ref = torch.rot90(x, -1, dims=(-2, -1))
        torch.testing.assert_close(
            A.rotate_by(x, -90.0)[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], rtol=0, atol=1e-10
        )

    def test_aspect_ratio_is_respected(self):
        # On a 6 x 10 image, the central 6 x 6 block turns about the image's centre.
        x = images(2, h=6, w=10, dtype=DT)
        out = A.rotate_by(x, 90.0)[..., 1:-1, 3:7]
        ref = torch.rot90(x[..., :, 2:8], 1, dims=(-2, -1))[..., 1:-1, 1:-1]
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-10)

    def test_180_degrees_flips_both_axes(self):
        x = images(2, h=5, w=7, dtype=DT)
        torch.testing.assert_close(A.rotate_by(x, 180.0), x.flip(-1, -2), rtol=0, atol=1e-10)

    def test_corners_get_the_fill_value(self):
        x = torch.ones(1, 1, 16, 16, dtype=DT)
        out = A.rotate_by(x, 45.0, fill=-2.0)
        assert out[0, 0, 0, 0].item() == pytest.approx(-2.0)
        assert out[0, 0, 8, 8].item() == pytest.approx(1.0)

    def test_per_example_angles(self):
        x = images(2, h=6, w=6, dtype=DT)
        out = A.rotate_by(x, torch.tensor([0.0, 180.0]))
        torch.testing.assert_close(out[0], x[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(out[1], x[1].flip(-1, -2), rtol=0, atol=1e-10)

    def test_random_rotation_shape_and_determinism(self):
        x = images(dtype=torch.float32)
        a, b = A.rotate(x, 15, generator=gen(2)), A.rotate(x, 15, generator=gen(2))
        assert a.shape == x.shape and a.dtype == torch.float32 and torch.equal(a, b)
        assert A.rotate(x[0], 15, generator=gen(2)).shape == x[0].shape


# --------------------------------------------------------------------------- colour
class TestColor:
    def test_zero_strengths_are_identity(self):
        x = images()
        assert torch.equal(A.color_jitter(x, 0, 0, 0, 0, generator=gen()), x)

    def test_shape_dtype_and_range(self):
        x = images(dtype=DT)
        out = A.color_jitter(x, 0.8, 0.8, 0.8, 0.3, generator=gen())
        assert out.shape == x.shape and out.dtype == DT
        assert bool((out >= 0).all() and (out <= 1).all())

    def test_brightness_scales_each_image_by_one_factor_in_range(self):
        x = images(30, dtype=DT) * 0.5 + 0.25
        out = A.color_jitter(
            x, brightness=0.3, contrast=0, saturation=0, generator=gen(1), clamp=False
        )
        ratio = (out / x).flatten(1)
        torch.testing.assert_close(ratio.max(1).values, ratio.min(1).values, rtol=1e-12, atol=0)
        assert bool((ratio >= 0.7 - 1e-12).all() and (ratio <= 1.3 + 1e-12).all())

    def test_contrast_zero_gives_the_mean_gray(self):
        x = images(dtype=DT)
        out = A.adjust_contrast(x, 0.0)
        mean_gray = (x * LUMA.view(1, 3, 1, 1)).sum(1).mean((1, 2))
        torch.testing.assert_close(
            out, mean_gray.view(-1, 1, 1, 1).expand_as(x), rtol=0, atol=1e-12
        )

    def test_contrast_keeps_the_mean_gray(self):
        x = images(dtype=DT)
        gray = lambda t: (t * LUMA.view(1, 3, 1, 1)).sum(1).mean((1, 2))  # noqa: E731
        torch.testing.assert_close(gray(A.adjust_contrast(x, 1.7)), gray(x), rtol=0, atol=1e-12)

    def test_saturation_zero_gives_grayscale(self):
        x = images(dtype=DT)
        out = A.adjust_saturation(x, 0.0)
        gray = (x * LUMA.view(1, 3, 1, 1)).sum(1, keepdim=True)
        torch.testing.assert_close(out, gray.expand_as(x), rtol=0, atol=1e-12)

    def test_hue_shift_and_back_is_identity(self):
        x = images(dtype=DT)
        torch.testing.assert_close(A.adjust_hue(A.adjust_hue(x, 0.3), -0.3), x, rtol=0, atol=1e-12)

    def test_hue_keeps_luma_and_gray_pixels(self):
        x = images(dtype=DT)
        out = A.adjust_hue(x, 0.25)
        luma = lambda t: (t * LUMA.view(1, 3, 1, 1)).sum(1)  # noqa: E731
        torch.testing.assert_close(luma(out), luma(x), rtol=0, atol=1e-12)
        gray = torch.full((1, 3, 2, 2), 0.4, dtype=DT)
        torch.testing.assert_close(A.adjust_hue(gray, 0.4), gray, rtol=0, atol=1e-12)

    def test_hue_zero_is_identity_and_changes_colour_otherwise(self):
        x = images(dtype=DT)
        torch.testing.assert_close(A.adjust_hue(x, 0.0), x, rtol=0, atol=1e-12)
        assert (A.adjust_hue(x, 0.2) - x).abs().max() > 0.05

    def test_single_channel_brightness_contrast(self):
        x = images(c=1)
        out = A.color_jitter(x, 0.2, 0.2, 0, 0, generator=gen())
        assert out.shape == x.shape

    def test_deterministic(self):
        x = images()
        assert torch.equal(
            A.color_jitter(x, hue=0.1, generator=gen(4)),
            A.color_jitter(x, hue=0.1, generator=gen(4)),
        )


# --------------------------------------------------------------------------- Cutout
class TestCutout:
    def test_shape_dtype_single(self):
        x = images(dtype=DT)
        assert A.cutout(x, 3, generator=gen()).dtype == DT
        assert A.cutout(x[0], 3, generator=gen()).shape == x[0].shape

    def test_p_zero_is_identity(self):
        x = images()
        assert torch.equal(A.cutout(x, 4, p=0.0, generator=gen()), x)

    def test_erased_pixels_are_the_clipped_boxes(self):
        x = images(300, c=2, h=10, w=10) + 1.0  # no pixel is 0 before Cutout
        out, boxes = A.cutout(x, 4, generator=gen(2), return_boxes=True)
        clipped = 0
        for i, (t, le, h, w) in enumerate(boxes.tolist()):
            mask = torch.zeros(10, 10, dtype=torch.bool)
            mask[t : t + h, le : le + w] = True
            assert torch.equal(out[i, :, mask], torch.zeros(2, h * w))
            assert torch.equal(out[i, :, ~mask], x[i, :, ~mask])
            assert h <= 4 and w <= 4 and h >= 2 and w >= 2  # centre inside: at least half remains
            clipped += h * w < 16
        assert clipped > 0  # squares at the border are clipped

    def test_p_controls_the_rate(self):
        n, p = 2000, 0.3
        x = images(n, c=1, h=4, w=4) + 1.0
        out = A.cutout(x, 2, p=p, generator=gen(3))
        cut = (out == 0).flatten(1).any(1).sum().item()
        assert abs(cut - n * p) < 5 * math.sqrt(n * p * (1 - p))

    def test_value(self):
        x = images()
        out = A.cutout(x, 8, value=-3.0, generator=gen())
        assert bool((out == -3.0).any())

    def test_deterministic(self):
        x = images()
        assert torch.equal(A.cutout(x, 3, generator=gen(6)), A.cutout(x, 3, generator=gen(6)))


# --------------------------------------------------------------------------- Beta and Gamma
class TestSampling:
    @pytest.mark.parametrize("a,b", [(0.2, 0.2), (1.0, 1.0), (2.0, 5.0), (0.5, 3.0), (4.0, 0.3)])
    def test_beta_mean_and_variance(self, a, b):
        n = 40_000
        s = A.sample_beta(a, b, n, generator=gen(1))
        mean, var = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
        assert bool((s >= 0).all() and (s <= 1).all())
        assert abs(s.mean().item() - mean) < 5 * math.sqrt(var / n)
        # Values lie in [0, 1], so Var((X - m)^2) <= E[(X - m)^2]: the sample variance's SE <= sqrt(var / n).
        assert abs(s.var().item() - var) < 5 * math.sqrt(var / n)

    def test_beta_distribution_ks(self):
        scipy_stats = pytest.importorskip("scipy.stats")
        s = A.sample_beta(0.2, 0.2, 5_000, generator=gen(2)).numpy()
        result = scipy_stats.kstest(s, scipy_stats.beta(0.2, 0.2).cdf)
        assert result.statistic < 1.63 / math.sqrt(len(s))  # 1% critical value

    @pytest.mark.parametrize("a", [0.1, 0.7, 1.0, 3.5])
    def test_gamma_mean_and_variance(self, a):
        n = 40_000
        s = A.sample_gamma(a, (n,), generator=gen(3))
        assert bool((s >= 0).all())
        assert abs(s.mean().item() - a) < 5 * math.sqrt(a / n)
        # Var of the sample variance of Gamma(a): (mu4 - var^2) / n with mu4 = 3a^2 + 6a.
        assert abs(s.var().item() - a) < 5 * math.sqrt((3 * a * a + 6 * a - a * a) / n)

    def test_deterministic_and_shaped(self):
        a = A.sample_beta(0.2, 0.2, (3, 4), generator=gen(5))
        assert a.shape == (3, 4) and torch.equal(
            a, A.sample_beta(0.2, 0.2, (3, 4), generator=gen(5))
        )
        assert A.sample_beta(1.0, 1.0, generator=gen()).shape == ()

    def test_tiny_alpha_gives_no_nan(self):
        s = A.sample_beta(0.01, 0.01, 10_000, generator=gen(6))
        assert bool(torch.isfinite(s).all() and (s >= 0).all() and (s <= 1).all())


# --------------------------------------------------------------------------- Mixup and CutMix
class TestMixup:
    def test_shapes_and_label_rows_sum_to_one(self):
        x, y = images(8), torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
        xm, ym = A.mixup(x, y, 5, generator=gen())
        assert xm.shape == x.shape and xm.dtype == x.dtype and ym.shape == (8, 5)
        torch.testing.assert_close(ym.sum(1), torch.ones(8))

    def test_image_is_the_blend_for_the_reported_lambda(self):
        x, y = images(8, dtype=DT), torch.arange(8)
        xm, ym, p = A.mixup(x, y, 8, alpha=0.4, generator=gen(1), return_params=True)
        lam, j = p["lam"], p["index"]
        assert 0 <= lam <= 1 and sorted(j.tolist()) == list(range(8))
        assert torch.equal(xm, lam * x + (1 - lam) * x[j])
        ref = lam * F.one_hot(y, 8).to(DT) + (1 - lam) * F.one_hot(y[j], 8).to(DT)
        torch.testing.assert_close(ym, ref, rtol=0, atol=1e-15)

    def test_explicit_pairing_and_soft_labels(self):
        x = images(2, dtype=DT)
        y_soft = torch.tensor([[0.7, 0.3], [0.2, 0.8]], dtype=DT)
        xm, ym, p = A.mixup(
            x, y_soft, 2, generator=gen(2), return_params=True, index=torch.tensor([1, 0])
        )
        lam = p["lam"]
        torch.testing.assert_close(
            ym[0], lam * y_soft[0] + (1 - lam) * y_soft[1], rtol=0, atol=1e-15
        )
        assert torch.equal(xm[0], lam * x[0] + (1 - lam) * x[1])

    def test_lambda_follows_beta(self):
        n, alpha = 500, 0.2
        lams = torch.tensor(
            [
                A.mixup(
                    torch.zeros(2, 1),
                    torch.tensor([0, 1]),
                    2,
                    alpha=alpha,
                    generator=gen(s),
                    return_params=True,
                )[2]["lam"]
                for s in range(n)
            ]
        )
        var = 1 / (4 * (2 * alpha + 1))
        assert abs(lams.mean().item() - 0.5) < 5 * math.sqrt(var / n)
        assert abs(lams.var().item() - var) < 5 * math.sqrt(var / n)

    def test_deterministic(self):
        x, y = images(8), torch.arange(8)
        a, b = A.mixup(x, y, 8, generator=gen(4)), A.mixup(x, y, 8, generator=gen(4))
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


class TestCutMix:
    @staticmethod
    def tagged(n, h, w):
        """Image i is constant i + 1, so every pixel tells which image it came from."""
        return (torch.arange(n, dtype=DT) + 1).view(n, 1, 1, 1).expand(n, 2, h, w).contiguous()

    def test_label_weight_is_the_counted_pixel_fraction(self):
        n, h, w = 6, 7, 9
        x, y = self.tagged(n, h, w), torch.arange(n)
        clipped = 0
        for seed in range(60):
            xm, ym, p = A.cutmix(x, y, n, alpha=1.0, generator=gen(seed), return_params=True)
            j, lam = p["index"], p["lam"]
            top, left, bottom, right = p["box"]
            clipped += (bottom - top) * (right - left) < int(h * math.sqrt(1 - p["lam0"])) * int(
                w * math.sqrt(1 - p["lam0"])
            )
            for i in range(n):
                from_other = (
                    (xm[i, 0] == j[i].item() + 1).double().mean().item() if j[i] != i else None
                )
                if from_other is not None:
                    assert ym[i, y[j[i]]].item() == pytest.approx(from_other, abs=1e-12)
                    assert 1 - lam == pytest.approx(from_other, abs=1e-12)
                    assert ym[i, y[i]].item() == pytest.approx(1 - from_other, abs=1e-12)
                else:
                    assert torch.equal(xm[i], x[i])
            torch.testing.assert_close(ym.sum(1), torch.ones(n, dtype=DT))
        assert clipped > 0  # some boxes were clipped by the border, and the weights still matched

    def test_cutmix_box_by_hand(self):
        # 8 x 8 image, 4 x 4 box centred at row 1, column 6: rows -1..3 -> 0..3, columns 4..8.
        assert A.cutmix_box(8, 8, (1, 6), (4, 4)) == ((0, 4, 3, 8), 1 - 12 / 64)
        assert A.cutmix_box(8, 8, (4, 4), (4, 4)) == ((2, 2, 6, 6), 0.75)
        assert A.cutmix_box(5, 7, (4, 0), (3, 5)) == ((3, 0, 5, 3), 1 - 6 / 35)
        assert A.cutmix_box(8, 8, (3, 3), (0, 0))[1] == 1.0

    def test_cutmix_uses_its_box(self):
        x, y = images(3), torch.arange(3)
        for seed in range(20):
            _, _, p = A.cutmix(x, y, 3, generator=gen(seed), return_params=True)
            assert A.cutmix_box(8, 8, p["center"], p["size"]) == (p["box"], p["lam"])
            assert p["size"] == (int(8 * math.sqrt(1 - p["lam0"])),) * 2

    def test_pixels_outside_the_box_are_untouched(self):
        x, y = images(5, dtype=DT), torch.arange(5)
        xm, _, p = A.cutmix(
            x, y, 5, generator=gen(3), return_params=True, index=torch.tensor([1, 2, 3, 4, 0])
        )
        top, left, bottom, right = p["box"]
        mask = torch.zeros(8, 8, dtype=torch.bool)
        mask[top:bottom, left:right] = True
        assert torch.equal(xm[..., ~mask], x[..., ~mask])
        assert torch.equal(xm[..., mask], x[[1, 2, 3, 4, 0]][..., mask])

    def test_shape_dtype_deterministic(self):
        x, y = images(4), torch.tensor([0, 1, 0, 1])
        a, b = A.cutmix(x, y, 2, generator=gen(7)), A.cutmix(x, y, 2, generator=gen(7))
        assert a[0].shape == x.shape and a[0].dtype == x.dtype and a[1].shape == (4, 2)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# --------------------------------------------------------------------------- modules and pipeline
class TestModules:
    CASES = [
        (RandomHFlip(0.5), lambda x, g: A.hflip(x, 0.5, generator=g)),
        (RandomCrop(6, padding=1), lambda x, g: A.random_crop(x, 6, 1, generator=g)),
        (RandomResizedCrop(), lambda x, g: A.random_resized_crop(x, generator=g)),
        (RandomRotation(10), lambda x, g: A.rotate(x, 10, generator=g)),
        (
            ColorJitter(0.3, 0.3, 0.3, 0.1),
            lambda x, g: A.color_jitter(x, 0.3, 0.3, 0.3, 0.1, generator=g),
        ),
        (Cutout(3), lambda x, g: A.cutout(x, 3, generator=g)),
    ]

    @pytest.mark.parametrize("module,function", CASES, ids=[type(c[0]).__name__ for c in CASES])
    def test_train_mode_is_the_function_and_eval_mode_the_identity(self, module, function):
        x = images()
        assert torch.equal(module.train()(x, generator=gen(1)), function(x, gen(1)))
        assert module.eval()(x, generator=gen(1)) is x

    def test_mixing_modules(self):
        x, y = images(), torch.tensor([0, 1, 2, 0])
        for module, function in ((Mixup(3), A.mixup), (CutMix(3), A.cutmix)):
            xa, ya = module.train()(x, y, generator=gen(2))
            xb, yb = function(x, y, 3, module.alpha, generator=gen(2))
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
            xe, ye = module.eval()(x, y, generator=gen(2))
            assert xe is x and ye is y

    def test_repr_shows_the_settings(self):
        text = repr(
            Augment(
                RandomCrop(8, padding=1, fill=-0.5), RandomRotation(10), Cutout(3, p=0.5), Mixup(10)
            )
        )
        for part in (
            "size=8, padding=1, fill=-0.5",
            "max_degrees=10",
            "size=3, p=0.5",
            "num_classes=10, alpha=0.2",
        ):
            assert part in text

    def test_augment_runs_the_steps_in_order(self):
        x, y = images(), torch.tensor([0, 1, 2, 0])
        aug = Augment(RandomHFlip(1.0), Cutout(2), Mixup(3, alpha=0.5))
        xa, ya = aug(x, y, gen(3))
        g = gen(3)
        xb = A.cutout(A.hflip(x, 1.0, generator=g), 2, generator=g)
        xb, yb = A.mixup(xb, y, 3, 0.5, generator=g)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
        aug.eval()
        xe, ye = aug(x, y, gen(3))
        assert xe is x and ye is y

    def test_augment_in_training_loop(self):
        from regcourse.data import digits_split
        from regcourse.models import build_model
        from regcourse.training import train

        data = digits_split(40, 20, seed=0)
        model = build_model("mlp", seed=0, hidden=16)
        aug = Augment(RandomCrop(8, padding=1), CutMix(10))
        hist = train(model, data, epochs=2, augment=aug, seed=0)
        assert len(hist.train_loss) == 2 and all(math.isfinite(v) for v in hist.train_loss)

    def test_augment_rejects_non_modules(self):
        with pytest.raises(TypeError, match="steps"):
            Augment(RandomHFlip(), A.hflip)


# --------------------------------------------------------------------------- text, audio, tabular
class TestText:
    TEXT = "the quick brown dog jumps over the lazy cat"

    def test_synonym_replacement(self):
        out = A.synonym_replacement(self.TEXT, n=3, generator=gen(1)).split()
        words = self.TEXT.split()
        changed = [(a, b) for a, b in zip(words, out) if a != b]
        assert len(out) == len(words) and len(changed) == 3
        assert all(b in A.SYNONYMS[a] for a, b in changed)

    def test_random_insertion(self):
        out = A.random_insertion(self.TEXT, n=2, generator=gen(2)).split()
        assert len(out) == len(self.TEXT.split()) + 2
        extra = list(out)
        for word in self.TEXT.split():
            extra.remove(word)
        all_synonyms = {s for v in A.SYNONYMS.values() for s in v}
        assert all(w in all_synonyms for w in extra)

    def test_random_swap_keeps_the_words(self):
        out = A.random_swap(self.TEXT, n=2, generator=gen(3))
        assert sorted(out.split()) == sorted(self.TEXT.split()) and out != self.TEXT

    def test_deterministic_and_n_zero(self):
        for f in (A.synonym_replacement, A.random_insertion, A.random_swap):
            assert f(self.TEXT, 2, generator=gen(4)) == f(self.TEXT, 2, generator=gen(4))
            assert f(self.TEXT, 0, generator=gen(4)) == self.TEXT

    def test_no_synonyms_no_change(self):
        assert A.synonym_replacement("xyz abc", 2, generator=gen()) == "xyz abc"
        assert A.random_insertion("xyz abc", 2, generator=gen()) == "xyz abc"


class TestAudio:
    SR = 8000

    def test_tone_frequency(self):
        assert A.dominant_frequency(A.tone(440, 1.0, self.SR), self.SR) == 440

    def test_resample_changes_speed_and_pitch(self):
        out = A.resample(A.tone(400, 1.0, self.SR), 1.5)
        assert len(out) == round(self.SR / 1.5)
        assert A.dominant_frequency(out, self.SR) == pytest.approx(600, abs=2)

    @pytest.mark.parametrize("rate", [0.5, 2.0, 1.25])
    def test_time_stretch_keeps_pitch(self, rate):
        out = A.time_stretch(A.tone(440, 1.0, self.SR), rate)
        assert len(out) == round(self.SR / rate)
        assert A.dominant_frequency(out, self.SR) == pytest.approx(440, abs=self.SR / len(out) + 1)

    @pytest.mark.parametrize("semitones,freq", [(12, 880), (-12, 220), (7, 440 * 2 ** (7 / 12))])
    def test_pitch_shift_keeps_duration(self, semitones, freq):
        out = A.pitch_shift(A.tone(440, 1.0, self.SR), semitones)
        assert len(out) == self.SR
        assert A.dominant_frequency(out, self.SR) == pytest.approx(freq, abs=2)

    def test_noise_at_exact_snr(self):
        wave = A.tone(300, 0.5, self.SR)
        for snr in (0.0, 10.0, 25.0):
            noisy = A.add_noise(wave, snr, generator=gen(1))
            measured = 10 * math.log10(wave.pow(2).mean() / (noisy - wave).pow(2).mean())
            assert measured == pytest.approx(snr, abs=1e-9)
        assert torch.equal(
            A.add_noise(wave, 5, generator=gen(2)), A.add_noise(wave, 5, generator=gen(2))
        )


class TestSmote:
    def test_points_on_segments_to_nearest_neighbours(self):
        x = torch.randn(12, 3, generator=gen(1), dtype=DT)
        out, p = A.smote(x, 50, k=3, generator=gen(2), return_params=True)
        assert out.shape == (50, 3)
        for i in range(50):
            b, m, u = p["base"][i], p["neighbour"][i], p["u"][i]
            order = ((x - x[b]) ** 2).sum(1).argsort()[1:4]  # the 3 nearest others, by brute force
            assert m in order.tolist() and 0 <= u < 1
            torch.testing.assert_close(out[i], x[b] + u * (x[m] - x[b]), rtol=0, atol=1e-12)

    def test_deterministic(self):
        x = torch.randn(8, 2, generator=gen(3))
        assert torch.equal(A.smote(x, 10, 2, generator=gen(4)), A.smote(x, 10, 2, generator=gen(4)))


# --------------------------------------------------------------------------- bad input
X4 = images()
Y4 = torch.tensor([0, 1, 2, 3])
NAN = X4.clone()
NAN[0, 0, 0, 0] = float("nan")
BAD = [
    (A.hflip, (X4,), {"p": 1.5}, ValueError, "p must be in"),
    (A.hflip, (X4,), {"p": -0.1}, ValueError, "p must be in"),
    (A.hflip, (NAN,), {}, ValueError, "x must be finite"),
    (A.hflip, (torch.zeros(8, 8),), {}, ValueError, "x must have 3 or 4 dimensions"),
    (A.hflip, (X4.long(),), {}, TypeError, "x must be a floating-point"),
    (A.hflip, ([[1.0]],), {}, TypeError, "x must be a torch.Tensor"),
    (A.hflip, (X4,), {"generator": 3}, TypeError, "generator"),
    (A.random_crop, (X4, 0), {}, ValueError, "size must be in"),
    (A.random_crop, (X4, 9), {}, ValueError, "size must be in"),
    (A.random_crop, (X4, 8), {"padding": -1}, ValueError, "padding must be >="),
    (A.random_crop, (X4, 2.5), {}, TypeError, "size must be an integer"),
    (A.random_resized_crop, (X4,), {"scale": (0.0, 1.0)}, ValueError, r"scale\[0\]"),
    (A.random_resized_crop, (X4,), {"scale": (0.8, 0.5)}, ValueError, "scale"),
    (A.random_resized_crop, (X4,), {"scale": (0.5, 1.2)}, ValueError, r"scale\[1\]"),
    (A.random_resized_crop, (X4,), {"ratio": 1.0}, TypeError, "ratio"),
    (A.rotate, (X4,), {"max_degrees": -1}, ValueError, "max_degrees"),
    (A.rotate, (X4,), {"max_degrees": 200}, ValueError, "max_degrees"),
    (A.rotate, (X4,), {"fill": float("nan")}, ValueError, "fill must be finite"),
    (A.rotate_by, (X4, torch.zeros(3)), {}, ValueError, "degrees"),
    (A.color_jitter, (X4,), {"brightness": -0.1}, ValueError, "brightness"),
    (A.color_jitter, (X4,), {"hue": 0.6}, ValueError, "hue"),
    (A.color_jitter, (X4[:, :1],), {"saturation": 0.2}, ValueError, "3 \\(RGB\\) channels"),
    (A.adjust_hue, (X4, 0.7), {}, ValueError, "shift must be in"),
    (A.cutout, (X4, 0), {}, ValueError, "size must be in"),
    (A.cutout, (X4, 9), {}, ValueError, "size must be in"),
    (A.cutout, (X4, 3), {"p": 2.0}, ValueError, "p must be in"),
    (A.mixup, (X4, Y4, 1), {}, ValueError, "num_classes must be >="),
    (A.mixup, (X4, Y4, 4), {"alpha": 0.0}, ValueError, "alpha must be >"),
    (A.mixup, (X4, Y4, 4), {"alpha": -1.0}, ValueError, "alpha must be >"),
    (
        A.mixup,
        (X4, torch.tensor([0, 1, 2, 4]), 4),
        {},
        ValueError,
        r"y must hold class indices in \[0, 4\), got 4",
    ),
    (A.mixup, (X4, torch.tensor([0, 1, -1, 2]), 4), {}, ValueError, "y must hold class indices"),
    (A.mixup, (X4, Y4[:3], 4), {}, ValueError, "same length"),
    (A.mixup, (X4, Y4.float(), 4), {}, ValueError, "y must be class indices"),
    (A.mixup, (NAN, Y4, 4), {}, ValueError, "x must be finite"),
    (A.mixup, (X4, Y4, 4), {"index": torch.tensor([0, 1, 2])}, ValueError, "index must have shape"),
    (A.mixup, (X4, Y4, 4), {"index": torch.tensor([0, 1, 2, 7])}, ValueError, "index must hold"),
    (A.cutmix, (X4[0], Y4, 4), {}, ValueError, "x must have 4 dimensions"),
    (A.cutmix, (X4, Y4, 4), {"alpha": float("inf")}, ValueError, "alpha must be finite"),
    (A.cutmix, (X4, Y4, 2.5), {}, TypeError, "num_classes must be an integer"),
    (A.cutmix_box, (8, 8, (8, 0), (2, 2)), {}, ValueError, r"center\[0\] must be in"),
    (A.cutmix_box, (8, 8, (0, 0), (2, 9)), {}, ValueError, r"size\[1\] must be in"),
    (A.cutmix_box, (0, 8, (0, 0), (2, 2)), {}, ValueError, "h must be >="),
    (A.sample_beta, (0.0, 1.0), {}, ValueError, "a must be >"),
    (A.sample_beta, (1.0, -2.0), {}, ValueError, "b must be >"),
    (A.sample_gamma, (float("nan"),), {}, ValueError, "concentration must be finite"),
    (A.synonym_replacement, (["a"],), {}, TypeError, "text must be a str"),
    (A.random_swap, ("a b",), {"n": -1}, ValueError, "n must be >="),
    (A.tone, (5000.0,), {"sample_rate": 8000}, ValueError, "freq"),
    (A.time_stretch, (A.tone(), 0.0), {}, ValueError, "rate must be >"),
    (A.pitch_shift, (A.tone(), 100), {}, ValueError, "semitones"),
    (A.add_noise, (torch.zeros(100, dtype=DT), 10.0), {}, ValueError, "wave must not be silent"),
    (A.add_noise, (A.tone().view(1, -1), 10.0), {}, ValueError, "wave must have 1 dimensions"),
    (A.smote, (torch.randn(5, 2), 3), {"k": 5}, ValueError, "k must be in"),
    (A.smote, (torch.randn(1, 2), 3), {}, ValueError, "at least 2"),
    (A.smote, (torch.randn(5, 2), -1), {}, ValueError, "n_new must be >="),
]


@pytest.mark.parametrize(
    "func,args,kwargs,exc,match", BAD, ids=[f"{b[0].__name__}-{i}" for i, b in enumerate(BAD)]
)
def test_bad_input(func, args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        func(*args, **kwargs)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: RandomHFlip(1.5), "p must be in"),
        (lambda: Cutout(0), "size must be >="),
        (lambda: Mixup(1), "num_classes"),
        (lambda: CutMix(10, alpha=0), "alpha"),
        (lambda: RandomRotation(-5), "max_degrees"),
        (lambda: ColorJitter(hue=1.0), "hue"),
    ],
)
def test_bad_module_settings(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# --------------------------------------------------------------------------- properties
class TestProperties:
    @settings(max_examples=25, deadline=None)
    @given(
        n=st.integers(1, 6),
        k=st.integers(2, 5),
        alpha=st.floats(0.05, 5.0),
        seed=st.integers(0, 10_000),
    )
    def test_mixup_labels_sum_to_one(self, n, k, alpha, seed):
        y = torch.randint(0, k, (n,), generator=gen(seed))
        _, ym = A.mixup(images(n, c=1, h=3, w=3), y, k, alpha=alpha, generator=gen(seed))
        torch.testing.assert_close(ym.sum(1), torch.ones(n))
        assert bool((ym >= 0).all())

    @settings(max_examples=25, deadline=None)
    @given(
        n=st.integers(1, 5),
        h=st.integers(1, 9),
        w=st.integers(1, 9),
        alpha=st.floats(0.05, 5.0),
        seed=st.integers(0, 10_000),
    )
    def test_cutmix_labels_sum_to_one_and_weight_matches_area(self, n, h, w, alpha, seed):
        x = (torch.arange(n, dtype=DT) + 1).view(n, 1, 1, 1).expand(n, 1, h, w).contiguous()
        y = torch.arange(n) % 2
        xm, ym, p = A.cutmix(x, y, 2, alpha=alpha, generator=gen(seed), return_params=True)
        torch.testing.assert_close(ym.sum(1), torch.ones(n, dtype=DT))
        changed = (xm != x).double().mean((1, 2, 3))
        moved = p["index"] != torch.arange(n)
        assert bool(
            torch.all(torch.isclose(changed[moved], torch.full_like(changed[moved], 1 - p["lam"])))
        )

    @settings(max_examples=25, deadline=None)
    @given(
        n=st.integers(1, 4),
        c=st.integers(1, 3),
        h=st.integers(1, 6),
        w=st.integers(1, 6),
        seed=st.integers(0, 10_000),
    )
    def test_flip_twice_is_identity(self, n, c, h, w, seed):
        x = torch.randn(n, c, h, w, generator=gen(seed))
        assert torch.equal(A.hflip(A.hflip(x, p=1.0), p=1.0), x)
