"""Embedding losses against NumPy, and every schedule value by value against its formula."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from semembed.errors import SemembedError
from semembed.losses import ClassEmbeddingLoss, inv_correlation, nearest_class_scores, squared_distance
from semembed.training.schedules import (
    LearningRateSchedule,
    ScheduleConfig,
    clr_lr,
    default_epochs,
    parse_sgd_schedule,
    resnet_lr,
    sgdr_lr,
)

rng = np.random.default_rng(0)
E = rng.normal(size=(5, 4)).astype("float32")
Y = np.array([0, 3, 3, 1, 4, 2])
P = rng.normal(size=(6, 4)).astype("float32")


@pytest.mark.parametrize("loss", ["inv_corr", "unnorm_corr", "softmax_corr", "mse"])
def test_class_embedding_loss_matches_numpy(loss):
    want = np.array([1 - E[y] @ p if loss != "mse" else np.sum((E[y] - p) ** 2) for y, p in zip(Y, P)])
    fn = ClassEmbeddingLoss(E, loss=loss, reduction=None)
    np.testing.assert_allclose(np.asarray(fn(Y, P)), want, rtol=1e-5)
    mean = ClassEmbeddingLoss(E, loss=loss)
    np.testing.assert_allclose(float(mean(Y, P)), want.mean(), rtol=1e-5)
    w = np.array([1, 0, 2, 1, 0.5, 1], dtype="float32")
    np.testing.assert_allclose(float(mean(Y, P, sample_weight=w)), (want * w).sum() / len(w), rtol=1e-5)
    again = ClassEmbeddingLoss.from_config(mean.get_config())
    np.testing.assert_allclose(float(again(Y, P)), want.mean(), rtol=1e-5)
    assert keras.saving.get_registered_object("semembed>ClassEmbeddingLoss") is ClassEmbeddingLoss


def test_functions_and_nearest_scores():
    np.testing.assert_allclose(np.asarray(inv_correlation(E[Y], P)), 1 - np.sum(E[Y] * P, axis=1), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(squared_distance(E[Y], P)), np.sum((E[Y] - P) ** 2, axis=1), rtol=1e-5)
    d2 = ((P[:, None, :] - E[None]) ** 2).sum(-1)
    got = np.asarray(nearest_class_scores(P, E, "mse"))
    np.testing.assert_array_equal(got.argmax(1), d2.argmin(1))
    np.testing.assert_array_equal(np.asarray(nearest_class_scores(P, E, "inv_corr")).argmax(1), (P @ E.T).argmax(1))


def test_sgdr_values_and_restarts():
    mx, mn = 0.1, 1e-6
    # first cycle, written out from the formula
    want = [mx] + [mn + 0.5 * (mx - mn) * (1 + math.cos(math.pi * (i + 1) / 12)) for i in range(1, 12)]
    assert [sgdr_lr(e) for e in range(12)] == pytest.approx(want, abs=1e-15)
    restarts = [e for e in range(1, 372) if sgdr_lr(e) == mx]
    assert restarts == [12, 36, 84, 180]
    assert sgdr_lr(13) == pytest.approx(mn + 0.5 * (mx - mn) * (1 + math.cos(math.pi * 2 / 24)))
    assert sgdr_lr(35) == pytest.approx(mn)  # last epoch of the second cycle: cos(pi) -> min
    assert default_epochs(ScheduleConfig()) == 372 == 12 + 24 + 48 + 96 + 192


def test_step_schedules():
    steps, epochs = parse_sgd_schedule("1:0.1,31:0.01,41:0.001,50")
    assert steps == [(1, 0.1), (31, 0.01), (41, 0.001)] and epochs == 50
    sched = LearningRateSchedule(ScheduleConfig(name="SGD", sgd_schedule="1:0.1,31:0.01,41:0.001,50"), 10, 50)
    got = [sched.epoch_lr(e) for e in range(50)]
    assert got == [0.1] * 30 + [0.01] * 10 + [0.001] * 10
    assert default_epochs(ScheduleConfig(name="SGD", sgd_schedule="1:0.1,31:0.01,41:0.001,50")) == 50
    with pytest.raises(SemembedError, match="sgd_schedule"):
        parse_sgd_schedule("0.1,31")
    assert [resnet_lr(e) for e in (0, 1, 79, 80, 119, 120, 163)] == [0.01, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    assert default_epochs(ScheduleConfig(name="ResNet-Schedule")) == 164 and default_epochs(ScheduleConfig(name="CLR")) == 240


def test_clr_triangle():
    spe, lo, hi = 5, 1e-5, 0.1
    half = 12 * spe
    for step in range(0, 4 * half + 1, 7):
        pos = step % (2 * half)
        frac = pos / half if pos <= half else 2 - pos / half  # up then down
        assert clr_lr(step, spe, lo, hi, 12) == pytest.approx(lo + (hi - lo) * frac, abs=1e-12)
    sched = LearningRateSchedule(ScheduleConfig(name="CLR"), spe, 240)
    assert sched(1, 2, 0) == pytest.approx(clr_lr(spe + 2, spe))


def test_plateau_reduction_and_resume():
    sched = LearningRateSchedule(ScheduleConfig(name="SGD", sgd_lr=0.1, sgd_patience=2, sgd_min_lr=1e-3), 10, 200)
    losses = [1.0, 0.9, 0.89995, 0.95, 0.8, 0.85, 0.81, 0.82, 0.83, 0.9]  # 0.89995 is not an improvement (min_delta 1e-4)
    lrs = []
    for v in losses:
        lrs.append(sched.epoch_lr(0))
        sched.end_epoch(v)
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001])
    resumed = LearningRateSchedule(ScheduleConfig(name="SGD", sgd_lr=0.1, sgd_patience=2, sgd_min_lr=1e-3), 10, 200)
    resumed.load_state(sched.state())
    assert resumed.epoch_lr(0) == sched.epoch_lr(0) and resumed.wait == sched.wait


def test_max_decay():
    spe, epochs, m = 7, 3, 0.25
    sched = LearningRateSchedule(ScheduleConfig(name="ResNet-Schedule", max_decay=m), spe, epochs)
    total = spe * epochs
    delta = (1 / m - 1) / total
    for step in (0, 5, total - 1):
        epoch = step // spe
        assert sched(epoch, step % spe, step) == pytest.approx(resnet_lr(epoch) / (1 + delta * step))
    assert sched(epochs, 0, total) == pytest.approx(m * resnet_lr(epochs))


def test_cosine_per_step():
    from semembed.training.schedules import cosine_lr

    spe, epochs, hi, lo = 7, 3, 0.2, 0.001
    sched = LearningRateSchedule(ScheduleConfig(name="cosine", cosine_max_lr=hi, cosine_min_lr=lo), spe, epochs)
    total = spe * epochs
    for step in range(total):
        want = lo + (hi - lo) * (1 + math.cos(math.pi * step / total)) / 2
        assert sched(step // spe, step % spe, step) == pytest.approx(want, abs=1e-15)
    assert cosine_lr(0, total, hi, lo) == hi and cosine_lr(total, total, hi, lo) == pytest.approx(lo)
    assert cosine_lr(total // 2, total - total % 2, hi, lo) == pytest.approx((hi + lo) / 2)
    with pytest.raises(SemembedError, match="cosine needs --epochs"):
        default_epochs(ScheduleConfig(name="cosine"))
