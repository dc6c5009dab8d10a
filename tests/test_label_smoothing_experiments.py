"""Tests of regcourse.experiments.label_smoothing: the training loop against a loop written
out by hand, the teacher cache, the distillation loss, the wrong-class information
measure against a direct computation, the two experiments at tiny settings, the figures
and bad inputs. The full-size experiments and their claims are checked by nbval on
book/label_smoothing.ipynb.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from regcourse.data import Split, mnist1d_split
from regcourse.experiments import get, run
from regcourse.experiments.label_smoothing import (
    distill,
    logit_norm_figure,
    reliability_figure,
    smoothing_calibration,
    smoothing_distillation,
    teacher,
    train_classifier,
    wrong_class_information,
)
from regcourse.models import mnist1d_model

# a tiny network and two epochs on MNIST-1D: every code path in about a second
TINY = dict(seeds=2, epochs=2, batch_size=1000, hidden=8)


def _toy_split(n=64, d=5, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = torch.randint(0, k, (n,), generator=g)
    empty = x[:0]
    return Split(x, y, empty, y[:0], x[:8], y[:8], k)


def _toy_model(d=5, k=3, seed=1):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 7), nn.ReLU(), nn.Linear(7, k))


@pytest.fixture(scope="module")
def calib():
    return smoothing_calibration(**TINY)


@pytest.fixture(scope="module")
def distil():
    return smoothing_distillation(**TINY, student_hidden=4)


class TestTrainClassifier:
    def test_equals_the_loop_written_out(self):
        data = _toy_split()
        ours = _toy_model()
        norms = train_classifier(ours, data, eps=0.2, epochs=3, batch_size=10, lr=0.05, seed=4)

        hand = _toy_model()
        opt = torch.optim.Adam(hand.parameters(), lr=0.05)
        g = torch.Generator().manual_seed(4)
        hand_norms = []
        for _ in range(3):
            hand.train()
            perm = torch.randperm(len(data.y_train), generator=g)
            starts = list(range(0, len(perm), 10))
            if len(perm) - starts[-1] == 1:
                starts.pop()
            for a, b in zip(starts, starts[1:] + [len(perm)]):
                idx = perm[a:b]
                loss = F.cross_entropy(
                    hand(data.x_train[idx]), data.y_train[idx], label_smoothing=0.2
                )
                opt.zero_grad()
                loss.backward()
                opt.step()
            hand.eval()
            with torch.no_grad():
                hand_norms.append(hand(data.x_train).norm(dim=1).mean().item())
        for p, q in zip(ours.parameters(), hand.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
        assert norms == pytest.approx(hand_norms, rel=1e-5)

    def test_same_seed_same_weights_other_seed_other_order(self):
        data = _toy_split()
        runs = []
        for seed in (0, 0, 1):
            m = _toy_model()
            train_classifier(m, data, eps=0.1, epochs=2, batch_size=8, lr=0.05, seed=seed)
            runs.append(torch.cat([p.detach().flatten() for p in m.parameters()]))
        assert torch.equal(runs[0], runs[1])
        assert not torch.equal(runs[0], runs[2])

    def test_record_norms_false_records_nothing(self):
        out = train_classifier(
            _toy_model(), _toy_split(), eps=0.0, epochs=2, batch_size=8, lr=0.01, seed=0,
            record_norms=False,
        )  # fmt: skip
        assert out == []

    def test_the_thread_count_is_restored(self):
        before = torch.get_num_threads()
        train_classifier(
            _toy_model(), _toy_split(), eps=0.0, epochs=1, batch_size=8, lr=0.01, seed=0
        )
        assert torch.get_num_threads() == before

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            (dict(eps=1.0), ValueError, "eps"),
            (dict(eps=-0.1), ValueError, "eps"),
            (dict(epochs=0), ValueError, "epochs"),
            (dict(batch_size=0), ValueError, "batch_size"),
            (dict(lr=0.0), ValueError, "lr"),
            (dict(seed=-1), ValueError, "seed"),
            (dict(record_norms=1), TypeError, "record_norms"),
        ],
    )
    def test_bad_arguments(self, kwargs, error, match):
        args = dict(eps=0.1, epochs=1, batch_size=8, lr=0.01, seed=0) | kwargs
        with pytest.raises(error, match=match):
            train_classifier(_toy_model(), _toy_split(), **args)

    def test_model_and_data_types(self):
        args = dict(eps=0.1, epochs=1, batch_size=8, lr=0.01, seed=0)
        with pytest.raises(TypeError, match="model"):
            train_classifier("net", _toy_split(), **args)
        with pytest.raises(TypeError, match="data"):
            train_classifier(_toy_model(), (torch.zeros(3, 5), torch.zeros(3)), **args)

    def test_accepts_numpy_and_tensor_scalars(self):
        import numpy as np

        m1, m2 = _toy_model(), _toy_model()
        train_classifier(m1, _toy_split(), eps=0.1, epochs=1, batch_size=8, lr=0.01, seed=0)
        train_classifier(
            m2, _toy_split(), eps=np.float64(0.1), epochs=np.int64(1), batch_size=torch.tensor(8),
            lr=torch.tensor(0.01, dtype=torch.float64), seed=np.int32(0),
        )  # fmt: skip
        assert all(torch.equal(p, q) for p, q in zip(m1.parameters(), m2.parameters()))


class TestTeacher:
    def test_a_second_call_gives_an_equal_fresh_copy(self):
        a, norms_a = teacher(0.1, 0, epochs=1, batch_size=1000, hidden=8)
        with torch.no_grad():
            for p in a.parameters():
                p.add_(1.0)  # changing the returned network must not change the cache
        b, norms_b = teacher(0.1, 0, epochs=1, batch_size=1000, hidden=8)
        fresh = mnist1d_model("mlp", seed=0, hidden=8)
        train_classifier(
            fresh, mnist1d_split(), eps=0.1, epochs=1, batch_size=1000, lr=0.01, seed=0
        )
        assert all(torch.equal(p, q) for p, q in zip(b.parameters(), fresh.parameters()))
        assert norms_a == norms_b and len(norms_b) == 1
        assert not b.training

    @pytest.mark.parametrize(
        "kwargs, match",
        [(dict(eps=1.0), "eps"), (dict(seed=-1), "seed"), (dict(hidden=0), "hidden")],
    )
    def test_bad_arguments(self, kwargs, match):
        args = dict(eps=0.1, seed=0) | kwargs
        with pytest.raises(ValueError, match=match):
            teacher(args.pop("eps"), args.pop("seed"), epochs=1, **args)


def _wrong_class_info_direct(logits, labels, temperature):
    """(6.10) one example at a time, in plain Python floats."""
    total = 0.0
    for row, c in zip(logits.tolist(), labels.tolist()):
        wrong = [v / temperature for k, v in enumerate(row) if k != c]
        top = max(wrong)
        w = [math.exp(v - top) for v in wrong]
        s = sum(w)
        r = [v / s for v in w]
        total += math.log(len(r)) + sum(p * math.log(p) for p in r if p > 0)
    return total / len(logits)


class TestWrongClassInformation:
    def test_matches_a_direct_computation(self):
        g = torch.Generator().manual_seed(3)
        z = 4 * torch.randn(20, 6, generator=g)
        y = torch.randint(0, 6, (20,), generator=g)
        for t in (0.5, 1.0, 3.0):
            assert wrong_class_information(z, y, t) == pytest.approx(
                _wrong_class_info_direct(z, y, t), rel=1e-10, abs=1e-12
            )

    def test_zero_when_the_wrong_classes_look_alike(self):
        z = torch.tensor([[7.0, 1.0, 1.0, 1.0], [-2.0, 3.0, -2.0, -2.0]])
        assert wrong_class_information(z, torch.tensor([0, 1])) == pytest.approx(0.0, abs=1e-12)

    def test_the_true_logit_does_not_matter(self):
        z = torch.tensor([[0.0, 2.0, -1.0, 0.5]])
        other = z.clone()
        other[0, 0] = 100.0
        y = torch.tensor([0])
        assert wrong_class_information(z, y) == pytest.approx(wrong_class_information(other, y))

    def test_approaches_log_k_minus_1_when_one_wrong_class_dominates(self):
        z = torch.tensor([[0.0, 60.0, 0.0, 0.0, 0.0]])
        assert wrong_class_information(z, torch.tensor([0])) == pytest.approx(math.log(4), rel=1e-9)

    def test_float32_underflow_still_counts(self):
        # in float32 softmax the wrong classes' probabilities underflow to 0; in float64 they do not
        z = torch.tensor([[200.0, 0.0, -30.0, -60.0]])
        value = wrong_class_information(z, torch.tensor([0]))
        assert math.isfinite(value) and value == pytest.approx(
            _wrong_class_info_direct(z.double(), torch.tensor([0]), 1.0)
        )

    def test_higher_temperature_flattens(self):
        g = torch.Generator().manual_seed(5)
        z, y = 3 * torch.randn(50, 10, generator=g), torch.randint(0, 10, (50,), generator=g)
        values = [wrong_class_information(z, y, t) for t in (0.5, 1.0, 2.0, 8.0)]
        assert all(a > b for a, b in zip(values, values[1:]))

    @pytest.mark.parametrize(
        "logits, labels, t, match",
        [
            (torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), 1.0, "logits"),
            (torch.zeros(3), torch.zeros(3, dtype=torch.long), 1.0, "logits"),
            (torch.zeros(3, 4), torch.zeros(2, dtype=torch.long), 1.0, "labels"),
            (torch.zeros(3, 4), torch.zeros(3, dtype=torch.long), 0.0, "temperature"),
            (torch.zeros(3, 4), torch.zeros(3, dtype=torch.long), -1.0, "temperature"),
        ],
    )
    def test_bad_inputs(self, logits, labels, t, match):
        with pytest.raises(ValueError, match=match):
            wrong_class_information(logits, labels, t)


class TestDistill:
    def test_the_loss_is_hintons(self):
        """One full-batch step of distill equals one Adam step on T² KL(teacher ‖ student)."""
        data = _toy_split(n=16)
        teacher_logits = torch.randn(16, 3, generator=torch.Generator().manual_seed(9))
        ours, ref = _toy_model(), _toy_model()
        distill(
            ours, teacher_logits, data, temperature=2.0, epochs=1, batch_size=16, lr=0.1, seed=0
        )
        opt = torch.optim.Adam(ref.parameters(), lr=0.1)
        p = torch.softmax(teacher_logits / 2.0, dim=1)
        q_log = F.log_softmax(ref(data.x_train) / 2.0, dim=1)
        loss = 4.0 * (p * (p.log() - q_log)).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        for a, b in zip(ours.parameters(), ref.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)

    def test_the_student_learns_the_teacher(self):
        data = _toy_split(n=128)
        teach = _toy_model(seed=3)
        with torch.no_grad():
            z = teach(data.x_train)
        student = _toy_model(seed=4)
        before = (student(data.x_train).argmax(1) == z.argmax(1)).float().mean().item()
        distill(student, z, data, temperature=1.0, epochs=60, batch_size=32, lr=0.02, seed=0)
        with torch.no_grad():
            after = (student(data.x_train).argmax(1) == z.argmax(1)).float().mean().item()
        assert after > max(before, 0.9) and not student.training

    @pytest.mark.parametrize(
        "change, error, match",
        [
            (dict(teacher_logits=torch.zeros(5, 3)), ValueError, "teacher_logits"),
            (dict(temperature=0.0), ValueError, "temperature"),
            (dict(epochs=0), ValueError, "epochs"),
            (dict(student="net"), TypeError, "student"),
            (dict(data=[1, 2]), TypeError, "data"),
        ],
    )
    def test_bad_arguments(self, change, error, match):
        args = dict(student=_toy_model(), teacher_logits=torch.zeros(64, 3), data=_toy_split())
        args |= dict(temperature=1.0, epochs=1, batch_size=8, lr=0.01, seed=0) | change
        student, logits, data = args.pop("student"), args.pop("teacher_logits"), args.pop("data")
        with pytest.raises(error, match=match):
            distill(student, logits, data, **args)


class TestSmoothingCalibration:
    def test_registered_with_its_options(self):
        exp = get("smoothing_calibration")
        assert set(exp.options) == {
            "seeds",
            "eps",
            "epochs",
            "batch_size",
            "lr",
            "hidden",
            "num_bins",
        }

    def test_one_row_per_seed_and_setting(self, calib):
        assert [(r["eps"], r["seed"]) for r in calib.rows] == [
            (0.0, 0),
            (0.1, 0),
            (0.0, 1),
            (0.1, 1),
        ]
        for r in calib.rows:
            assert 0 <= r["ece"] <= 1 and 0 <= r["test_acc"] <= 1 and 0.1 <= r["mean_conf"] <= 1
            assert r["logit_norm"] > 0 and r["test_nll"] > 0

    def test_rows_measure_the_returned_logits(self, calib):
        data = mnist1d_split()
        for r in calib.rows:
            z = calib.extra["logits"][r["eps"], r["seed"]]
            acc = (z.argmax(1) == data.y_test).double().mean().item()
            assert r["test_acc"] == pytest.approx(acc)
            conf = torch.softmax(z.double(), 1).max(1).values.mean().item()
            assert r["mean_conf"] == pytest.approx(conf)

    def test_pooled_diagrams_hold_every_seed(self, calib):
        for diagram in calib.extra["diagrams"].values():
            assert diagram.num_examples == TINY["seeds"] * 1000
            assert len(diagram.count) == 15

    def test_one_norm_per_epoch(self, calib):
        assert all(len(v) == TINY["epochs"] for v in calib.extra["norms"].values())

    def test_claims_are_booleans_and_figure_is_not_in_pyplot(self, calib):
        # a notebook's inline backend shows every open pyplot figure at the end of a cell
        assert calib.claims and all(isinstance(v, bool) for v in calib.claims.values())
        assert isinstance(calib.figure, Figure) and calib.figure.canvas.manager is None

    def test_deterministic(self, calib):
        again = smoothing_calibration(**TINY)
        assert again.rows == calib.rows

    def test_through_run_with_an_unknown_option(self):
        with pytest.raises(TypeError, match="no option 'temperature'"):
            run("smoothing_calibration", temperature=2.0)

    @pytest.mark.parametrize(
        "kwargs, match",
        [
            (dict(seeds=0), "seeds"),
            (dict(eps=0.0), "eps"),
            (dict(eps=1.0), "eps"),
            (dict(num_bins=0), "num_bins"),
            (dict(hidden=0), "hidden"),
        ],
    )
    def test_bad_options(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            smoothing_calibration(**(TINY | kwargs))


class TestSmoothingDistillation:
    def test_rows(self, distil):
        sources = [r["source"] for r in distil.rows]
        assert sources == ["labels", "hard teacher", "smoothed teacher"] * TINY["seeds"]
        for r in distil.rows:
            assert 0 <= r["test_acc"] <= 1
            if r["source"] == "labels":
                assert r["teacher_test_acc"] is None and r["wrong_class_info"] is None
            else:
                assert 0 <= r["wrong_class_info"] <= math.log(9)

    def test_teachers_are_the_calibration_networks(self, calib, distil):
        by = {(r["eps"], r["seed"]): r["test_acc"] for r in calib.rows}
        for r in distil.rows:
            if r["source"] != "labels":
                eps = 0.0 if r["source"] == "hard teacher" else 0.1
                assert r["teacher_test_acc"] == by[eps, r["seed"]]

    def test_summary_is_mean_and_std_of_the_rows(self, distil):
        for source, stats in distil.extra["summary"].items():
            values = [r["test_acc"] for r in distil.rows if r["source"] == source]
            mean, std = stats["test_acc"]
            assert mean == pytest.approx(sum(values) / len(values))
            assert std == pytest.approx(torch.tensor(values, dtype=torch.float64).std().item())

    @pytest.mark.parametrize(
        "kwargs, match",
        [(dict(temperature=0.0), "temperature"), (dict(student_hidden=0), "student_hidden")],
    )
    def test_bad_options(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            smoothing_distillation(**(TINY | kwargs))


class TestFigures:
    def test_reliability_figure_one_panel_per_setting(self, calib):
        fig = reliability_figure(calib.extra["diagrams"])
        assert isinstance(fig, Figure) and len(fig.axes) == 2
        assert all(ax.get_xlim() == (0, 1) and ax.get_ylim() == (0, 1) for ax in fig.axes)

    def test_logit_norm_figure_starts_at_zero(self, calib):
        fig = logit_norm_figure(calib.extra["norms"], (0.0, 0.1))
        ax = fig.axes[0]
        assert ax.get_ylim()[0] == 0 and len(ax.lines) == 2

    @pytest.mark.parametrize("diagrams", [{}, [], {0.0: "diagram"}, None])
    def test_reliability_figure_refuses_other_input(self, diagrams):
        with pytest.raises(TypeError, match="diagrams"):
            reliability_figure(diagrams)

    @pytest.mark.parametrize(
        "norms, eps_values, error, match",
        [
            ([1.0, 2.0], (0.0,), TypeError, "norms"),
            ({0.0: [1.0, 2.0]}, (0.0,), TypeError, "norms"),
            ({(0.0, 0): []}, (0.0,), TypeError, "norms"),
            ({(0.0, 0): [1.0, 2.0]}, (0.1,), ValueError, "eps_values"),
            ({(0.0, 0): [1.0, 2.0]}, (), ValueError, "eps_values"),
            ({(0.0, 0): [1.0, 2.0], (0.0, 1): [1.0]}, (0.0,), ValueError, "lengths"),
        ],
    )
    def test_logit_norm_figure_refuses_other_input(self, norms, eps_values, error, match):
        with pytest.raises(error, match=match):
            logit_norm_figure(norms, eps_values)
