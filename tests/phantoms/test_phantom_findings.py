"""Ground truth agrees with the rendered masks: lobes, severity classes, slice ranges, boxes."""

from __future__ import annotations

import numpy as np
import pytest

from models.phantoms.render import FLUID, HEART
from models.phantoms.truth import (
    LOBE_CODES,
    cardiomegaly_grade,
    covid_class,
    effusion_size,
    emphysema_grade,
    lobe_label,
    size_bucket,
)


def _all_findings(cases):
    return [(case, i, f) for case in cases.values() for i, f in enumerate(case.findings)]


def test_planned_findings_are_present(planned_cases):
    kinds = {name: sorted({f.type for f in c.findings}) for name, c in planned_cases.items()}
    assert kinds["normal"] == []
    assert kinds["nodules"] == ["nodule"]
    assert kinds["covid"] == ["covid"]
    assert kinds["effusion-cardiomegaly"] == ["cardiomegaly", "effusion"]
    assert kinds["emphysema"] == ["emphysema", "nodule"]
    assert len([f for f in planned_cases["nodules"].findings if f.type == "nodule"]) == 3


def test_nodules_lie_inside_their_stated_lobe(planned_cases):
    for case, i, f in _all_findings(planned_cases):
        if f.type != "nodule":
            continue
        mask = case.finding_mask(i)
        assert mask.any()
        assert (case.lobes[mask] == lobe_label(f.lobe)).all(), f"{f.lobe} nodule leaks out of its lobe"
        assert f.side == ("right" if f.lobe.startswith("R") else "left")
        assert 4 <= f.size_mm <= 30 and f.subtype in ("solid", "part-solid", "ground-glass", "calcified")
        k, row, col = case.geometry.index_of(tuple(f.centre_lps_mm))
        assert f.slice_range[0] - 1 <= k <= f.slice_range[1] + 1
        assert f.box[0] - 2 <= col <= f.box[2] + 2 and f.box[1] - 2 <= row <= f.box[3] + 2


def test_nodule_attenuation_matches_subtype(planned_cases):
    checked = 0
    for case, i, f in _all_findings(planned_cases):
        if f.type == "nodule" and f.size_mm >= 4 * case.geometry.pixel_spacing:  # beyond partial volume
            checked += 1
            k = int(round(case.geometry.index_of(tuple(f.centre_lps_mm))[0]))  # central slice
            median = np.median(case.hu[k][case.finding_mask(i)[k]])
            expected = {"solid": (-200, 100), "part-solid": (-700, 60),
                        "ground-glass": (-800, -350), "calcified": (150, 1000)}[f.subtype]
            assert expected[0] < median < expected[1], (f.subtype, median)
    assert checked >= 2


def test_covid_class_agrees_with_involved_fraction(planned_cases):
    case = planned_cases["covid"]
    (i, f), = [(i, f) for i, f in enumerate(case.findings) if f.type == "covid"]
    fraction = case.finding_mask(i).sum() / (case.lobes > 0).sum()
    assert f.extent["involved_fraction"] == pytest.approx(fraction, abs=1e-3)
    assert f.severity == covid_class(fraction) == case.study["covid_severity"] == "CT-2"
    opacity = case.hu[case.finding_mask(i)].mean()
    assert opacity > case.hu[(case.lobes > 0) & ~case.finding_mask(i)].mean() + 150
    assert planned_cases["normal"].study["covid_severity"] == "CT-0"
    lower = [f.extent[f"{c}_fraction"] for c in ("RLL", "LLL")]
    upper = [f.extent[f"{c}_fraction"] for c in ("RUL", "LUL")]
    assert min(lower) > max(upper), "basal predominance"
    rll = case.lobes == lobe_label("RLL")
    assert f.extent["RLL_fraction"] == pytest.approx(case.finding_mask(i)[rll].mean(), abs=1e-3)


def test_effusion_is_dependent_fluid_on_its_side(planned_cases):
    case = planned_cases["effusion-cardiomegaly"]
    mid = case.geometry.index_of((case.patient.cx, 0, 0))[2]
    for i, f in enumerate(case.findings):
        if f.type != "effusion":
            continue
        mask = case.finding_mask(i)
        assert (case.tissue[mask] == FLUID).all()
        cols = np.nonzero(mask)[2]
        assert (cols < mid).all() if f.side == "right" else (cols >= mid).all()
        assert -10 < np.median(case.hu[mask]) < 35
        rows_fluid = np.nonzero(mask)[1].mean()
        lung_side = case.lobes > 0
        lung_side[..., : int(mid)] &= f.side == "right"
        lung_side[..., int(mid):] &= f.side == "left"
        assert rows_fluid > np.nonzero(lung_side)[1].mean(), "fluid lies posterior (dependent)"
        assert f.severity == effusion_size(f.extent["hemithorax_fraction"])
    sides = {f.side: f.severity for f in case.findings if f.type == "effusion"}
    assert sides == {"right": "moderate", "left": "small"}


def test_cardiomegaly_ratio_from_masks(planned_cases):
    case = planned_cases["effusion-cardiomegaly"]
    (f,) = [f for f in case.findings if f.type == "cardiomegaly"]
    heart_w = max(np.ptp(np.nonzero(s.any(0))[0]) + 1 for s in (case.tissue == HEART) if s.any())
    lung_w = max(np.ptp(np.nonzero(s.any(0))[0]) + 1 for s in (case.lobes > 0) if s.any())
    ratio = heart_w / lung_w
    assert ratio > 0.5 and f.extent["cardiothoracic_ratio"] == pytest.approx(ratio, abs=1e-3)
    assert f.severity == cardiomegaly_grade(ratio)
    assert planned_cases["normal"].study["cardiothoracic_ratio"] < 0.5


def test_emphysema_extent_is_the_low_attenuation_percentage(planned_cases):
    case = planned_cases["emphysema"]
    (f,) = [f for f in case.findings if f.type == "emphysema"]
    lung = case.lobes > 0
    laa = 100 * (case.hu[lung] < -950).mean()
    assert f.extent["laa_950_percent"] == pytest.approx(laa, abs=0.01)
    assert f.severity == emphysema_grade(laa) is not None
    assert 100 * (planned_cases["normal"].hu[planned_cases["normal"].lobes > 0] < -950).mean() < 2


def test_slice_ranges_and_boxes_match_masks(planned_cases):
    for case, i, f in _all_findings(planned_cases):
        if f.slice_range is None:
            continue
        mask = case.finding_mask(i)
        ks = np.nonzero(mask.any(axis=(1, 2)))[0]
        assert f.slice_range == [int(ks[0]), int(ks[-1])]
        assert [b[0] for b in f.slice_boxes] == ks.tolist()
        for k, x0, y0, x1, y1 in f.slice_boxes[:: max(1, len(f.slice_boxes) // 5)]:
            rows, cols = np.nonzero(mask[k])
            assert [x0, y0, x1, y1] == [cols.min(), rows.min(), cols.max(), rows.max()]
        _, rows, cols = np.nonzero(mask)
        assert f.box == [cols.min(), rows.min(), cols.max(), rows.max()]


def test_truth_json_is_plain_json(planned_cases):
    import json

    doc = json.loads(json.dumps(planned_cases["nodules"].truth_json()))
    assert doc["slice_order"] == "inferior_to_superior"
    assert {f["lobe"] for f in doc["findings"]} <= set(LOBE_CODES)
    assert all(size_bucket(f["size_mm"]) for f in doc["findings"])
    assert doc["diagnosis"]["nodule"] == "present" and doc["diagnosis"]["effusion"] == "absent"
