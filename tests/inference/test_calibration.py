"""Temperature scaling: an over-confident head's probabilities become ones a clinician can read,
without changing which class it ranks first; the package carries the temperature and the
runtime applies it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from inference.calibration import (
    apply_temperature,
    calibration_figures,
    expected_calibration_error,
    fit_temperature,
)
from inference.errors import PackageError
from inference.package import load_package
from inference.runtime import ReportRuntime


def _overconfident(n: int = 2000, true_temperature: float = 4.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A two-class head whose logits are `true_temperature` times too large: labels drawn from the
    calibrated probabilities, the head reports the sharpened ones."""
    rng = np.random.default_rng(seed)
    logit = rng.normal(0.0, 2.0, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    sharp = logit * true_temperature
    p1 = 1 / (1 + np.exp(-sharp))
    return np.stack([1 - p1, p1], axis=1), labels


def test_fit_recovers_the_over_confidence_and_fixes_the_calibration_error() -> None:
    p, y = _overconfident()
    t = fit_temperature(p, y)
    assert 3.3 < t < 4.8
    figures = calibration_figures(p, y, t)
    assert figures["ece_before"] > 0.1 and figures["ece_after"] < 0.04
    assert figures["nll_after"] < figures["nll_before"]
    assert figures["auc"] == pytest.approx(calibration_figures(p, y, 1.0)["auc"])  # ranking unchanged


def test_scaling_keeps_every_study_s_most_likely_class() -> None:
    rng = np.random.default_rng(1)
    p = rng.dirichlet([0.3] * 4, size=500)
    scaled = apply_temperature(p, 7.0)
    assert np.array_equal(scaled.argmax(-1), p.argmax(-1))
    assert np.allclose(scaled.sum(-1), 1.0)
    assert scaled.max(-1).mean() < p.max(-1).mean()  # softer
    assert np.array_equal(apply_temperature(p, 1.0), p)


def test_a_zero_probability_from_the_graph_does_not_break_scaling() -> None:
    scaled = apply_temperature(np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32), 5.0)
    assert np.isfinite(scaled).all() and 0.9 < scaled[0, 1] < 1.0


def test_a_perfectly_separating_head_is_never_sharpened() -> None:
    p = np.array([[0.9, 0.1]] * 50 + [[0.2, 0.8]] * 50)
    y = np.array([0] * 50 + [1] * 50)
    assert fit_temperature(p, y) == pytest.approx(1.0, abs=1e-3)


def test_expected_calibration_error_of_an_honest_head_is_small() -> None:
    rng = np.random.default_rng(2)
    p1 = rng.random(5000)
    y = (rng.random(5000) < p1).astype(int)
    honest = np.stack([1 - p1, p1], axis=1)
    assert expected_calibration_error(honest, y) < 0.03
    liar = np.stack([1 - (p1 > 0.5), (p1 > 0.5)], axis=1).astype(float)
    assert expected_calibration_error(liar, y) > 0.2


def _copy_with_temperature(src: Path, dst: Path, temperature) -> Path:
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    for head in manifest["diagnosis"]:
        head["temperature"] = temperature
        head["calibration"] = {"auc": 0.6, "studies": 10}
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


@pytest.mark.parametrize("bad", [0, -1.0, "3", None, True, 1e9])
def test_a_package_with_an_unusable_temperature_is_refused(random_package: Path, tmp_path: Path, bad) -> None:
    root = _copy_with_temperature(random_package, tmp_path / "pkg", bad)
    with pytest.raises(PackageError, match="temperature"):
        load_package(root)


def test_the_runtime_shows_scaled_probabilities(random_package: Path, tmp_path: Path, small_ct) -> None:
    plain = ReportRuntime.load(random_package, device="cpu", warmup=False)
    hot = ReportRuntime.load(_copy_with_temperature(random_package, tmp_path / "pkg", 8.0), device="cpu", warmup=False)
    raw = plain.diagnose(small_ct)

    def flat(d):
        return [d[h][c] for h in sorted(d) for c in sorted(d[h])]

    assert flat(hot.diagnose(small_ct, calibrated=False)) == pytest.approx(flat(raw))
    scaled = hot.diagnose(small_ct)
    for head in hot.package.diagnosis_heads:
        before = np.array([raw[head.name][c] for c in head.classes])
        after = np.array([scaled[head.name][c] for c in head.classes])
        assert np.allclose(after, apply_temperature(before, 8.0), atol=1e-6)
        assert after.max() <= before.max() + 1e-9
    assert hot.package.diagnosis_heads[0].calibration == {"auc": 0.6, "studies": 10}
    # the draft's diagnosis is the scaled one too
    assert flat(hot.draft_sync(small_ct).diagnosis) == pytest.approx(flat(scaled))
