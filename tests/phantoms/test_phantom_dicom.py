"""Phantom series are valid DICOM CT: read back by pydicom, geometry right, dciodvfy clean."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian

from models.phantoms.dicom_out import (
    TRANSFER_SYNTAX_NAMES,
    available_transfer_syntaxes,
    write_study,
)

SYNTAXES = list(TRANSFER_SYNTAX_NAMES.items())


@pytest.fixture(scope="module")
def written(small_case, tmp_path_factory):
    """The small case written once per transfer syntax (signed pixels for odd ones)."""
    root = tmp_path_factory.mktemp("phantom-dicom")
    out = {}
    for i, (name, uid) in enumerate(SYNTAXES):
        if uid in available_transfer_syntaxes():
            folder = root / name
            out[name] = (folder, write_study(small_case, folder, number=i + 1, transfer_syntax=uid,
                                             signed=bool(i % 2)))
    return out


@pytest.mark.parametrize("name", [n for n, _ in SYNTAXES])
def test_pixels_and_geometry_round_trip(written, small_case, name):
    if name not in written:
        pytest.skip(f"no encoder installed for {name}")
    folder, paths = written[name]
    g = small_case.geometry
    assert [p.name for p in paths] == [f"IM{k + 1:04d}.dcm" for k in range(g.num_slices)]
    z_prev = None
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == TRANSFER_SYNTAX_NAMES[name]
        hu = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        assert np.array_equal(hu, np.clip(np.rint(small_case.hu[k]), -1024, 3071))
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert float(ds.PixelSpacing[0]) == pytest.approx(g.pixel_spacing, abs=1e-4)
        ipp = [float(v) for v in ds.ImagePositionPatient]
        assert ipp == pytest.approx(g.lps_of(k, 0, 0), abs=1e-3)
        if z_prev is not None:
            assert ipp[2] - z_prev == pytest.approx(float(ds.SpacingBetweenSlices), abs=1e-3)
        z_prev = ipp[2]
        assert ds.InstanceNumber == k + 1 and str(ds.PatientName).startswith("PHANTOM^")
    truth = json.loads((folder / "findings.json").read_text())
    assert truth["dicom"]["SeriesInstanceUID"] == ds.SeriesInstanceUID
    assert (folder / "report.txt").read_text().startswith("FINDINGS:")


def test_uids_unique_and_reproducible(written, small_case, tmp_path):
    folder, paths = written["explicit"]
    first = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    sops = {d.SOPInstanceUID for d in first}
    assert len(sops) == len(paths)
    assert len({d.StudyInstanceUID for d in first}) == 1 and first[0].StudyInstanceUID not in sops
    again = write_study(small_case, tmp_path, number=1, transfer_syntax=ExplicitVRLittleEndian)
    assert [pydicom.dcmread(p).SOPInstanceUID for p in again] == [d.SOPInstanceUID for d in first]
    other = {name: pydicom.dcmread(paths[0]).StudyInstanceUID for name, (_, paths) in written.items()}
    assert len(set(other.values())) == len(other), "different case numbers get different studies"


@pytest.mark.parametrize("name", [n for n, _ in SYNTAXES])
def test_dciodvfy_reports_no_errors(written, name):
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy not installed (Debian/Ubuntu: apt-get install dicom3tools)")
    if name not in written:
        pytest.skip(f"no encoder installed for {name}")
    _, paths = written[name]
    for path in (paths[0], paths[-1]):
        result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
        output = result.stdout + result.stderr
        errors = [line for line in output.splitlines() if line.startswith("Error")]
        assert not errors, output
        assert "CTImage" in output


def test_unavailable_transfer_syntax_is_refused(small_case, tmp_path):
    with pytest.raises(ValueError, match="transfer syntax"):
        write_study(small_case, tmp_path, number=1, transfer_syntax="1.2.840.10008.1.2.4.50")
