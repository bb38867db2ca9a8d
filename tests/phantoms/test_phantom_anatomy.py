"""The phantoms look like chest CTs in numbers: HU ranges, organs, geometry, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from models.phantoms import make_case
from models.phantoms.render import AIR, BONE, FAT, HEART, LUNG, SOFT, TABLE, VESSEL


def test_tissues_have_realistic_hu(planned_cases):
    case = planned_cases["normal"]
    hu, tissue = case.hu, case.tissue
    lung = case.lobes > 0
    assert -900 < hu[lung].mean() < -750
    assert -1050 < np.median(hu[tissue == AIR]) < -950
    assert -140 < np.median(hu[tissue == FAT]) < -60
    assert 20 < np.median(hu[tissue == SOFT]) < 70
    assert 20 < np.median(hu[tissue == HEART]) < 60
    bone = hu[tissue == BONE]
    assert bone.size > 0 and np.percentile(bone, 90) > 400
    assert (tissue == VESSEL).any()


def test_body_contour_is_surrounded_by_air(planned_cases):
    case = planned_cases["normal"]
    k = case.geometry.num_slices // 2
    body = (case.tissue[k] != AIR) & (case.tissue[k] != TABLE)
    assert not body[0, :].any() and not body[:, 0].any() and not body[:, -1].any()
    assert 0.3 < body.mean() < 0.9
    assert (case.hu[k][0, :] < -900).all()
    assert (case.tissue[k] == TABLE).any(), "the patient lies on a table"


def test_two_lungs_five_lobes_left_smaller(planned_cases):
    case = planned_cases["normal"]
    counts = np.bincount(case.lobes.ravel(), minlength=6)
    assert (counts[1:] > 0).all(), "every lobe is present"
    right, left = counts[1:4].sum(), counts[4:6].sum()
    assert left < right
    voxel_ml = case.geometry.pixel_spacing**2 * case.geometry.slice_thickness / 1000
    assert 1500 < (right + left) * voxel_ml < 9000
    assert (case.tissue[case.lobes > 0] != AIR).all()
    assert ((case.tissue == LUNG) <= (case.lobes > 0)).all()


def test_lobes_are_ordered_upper_above_lower(planned_cases):
    case = planned_cases["normal"]
    z = np.arange(case.geometry.num_slices)[:, None, None]
    mean_z = {label: (z * (case.lobes == label)).sum() / (case.lobes == label).sum()
              for label in range(1, 6)}
    assert mean_z[1] > mean_z[2] > mean_z[3] or mean_z[1] > mean_z[3]
    assert mean_z[4] > mean_z[5]


def test_geometry_matches_volume_and_is_in_mm(planned_cases):
    case = planned_cases["normal"]
    g = case.geometry
    assert case.hu.shape == (g.num_slices, g.rows, g.columns) == case.lobes.shape
    assert case.hu.dtype == np.float32
    assert 200 < g.columns * g.pixel_spacing < 520  # field of view in mm
    assert g.lps_of(1, 0, 0)[2] - g.lps_of(0, 0, 0)[2] == pytest.approx(g.slice_thickness)


def test_same_seed_same_phantom_and_size_override_keeps_patient():
    a = make_case(3, size=64, num_slices=10)
    b = make_case(3, size=64, num_slices=10)
    assert np.array_equal(a.hu, b.hu) and a.report == b.report
    c = make_case(3, size=96, num_slices=10)
    assert c.plan == a.plan and c.patient.body_a == a.patient.body_a
    assert make_case(4, size=64, num_slices=10).hu.tobytes() != a.hu.tobytes()


def test_default_protocol_is_a_realistic_scanner():
    case = make_case(11, size=64)
    g = case.geometry
    assert 40 <= g.num_slices <= 400
    assert 1.0 <= g.slice_thickness <= 5.0
    assert 0.05 < case.study["noise_sd_hu"] < 40
