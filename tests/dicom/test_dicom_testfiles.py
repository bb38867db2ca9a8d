"""pydicom's bundled test files: every transfer syntax decodes like pydicom; odd files give reasons."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from app.dicom import LoadError, index_sources, load_volume
from app.dicom.headers import read_header
from app.dicom.loader import read_pixels
from app.dicom.model import FileRef

# (file, transfer syntax it exercises)
GREYSCALE = [
    ("MR_small_implicit.dcm", "implicit VR little endian"),
    ("CT_small.dcm", "explicit VR little endian"),
    ("MR_small_bigendian.dcm", "explicit VR big endian"),
    ("image_dfl.dcm", "deflated explicit VR little endian"),
    ("JPGExtended.dcm", "JPEG extended"),
    ("JPGLosslessP14SV1_1s_1f_8b.dcm", "JPEG lossless SV1"),
    ("JPEG-LL.dcm", "JPEG lossless"),
    ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS lossless"),
    ("MR_small_jp2klossless.dcm", "JPEG 2000 lossless"),
    ("693_J2KI.dcm", "JPEG 2000"),
    ("MR_small_RLE.dcm", "RLE lossless"),
    ("emri_small_RLE.dcm", "RLE lossless, multi-frame"),
    ("emri_small_jpeg_2k_lossless.dcm", "JPEG 2000 lossless, multi-frame"),
]


def _path(name: str) -> str:
    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"pydicom test file {name} not available")
    return str(path)


@pytest.mark.parametrize(("name", "syntax"), GREYSCALE, ids=[n for n, _ in GREYSCALE])
def test_pixels_decode_like_pydicom(name, syntax):
    path = _path(name)
    slices, _ = read_header(FileRef(path))
    ours = read_pixels(slices[0])
    expected = pydicom.dcmread(path).pixel_array
    np.testing.assert_array_equal(ours.reshape(expected.shape), expected, err_msg=syntax)
    assert ours.shape[0] == len(slices)


def test_jpeg_baseline_colour_decodes_but_is_not_a_ct_volume():
    path = _path("SC_rgb_jpeg_dcmtk.dcm")
    slices, _ = read_header(FileRef(path))
    expected = pydicom.dcmread(path).pixel_array
    np.testing.assert_array_equal(read_pixels(slices[0])[0], expected)
    series = index_sources([path]).series[0]
    assert not series.loadable and any("not a greyscale image" in p for p in series.problems)
    with pytest.raises(LoadError, match="greyscale"):
        load_volume(series)


@pytest.mark.parametrize(
    ("plain", "packed"),
    [
        ("693_UNCR.dcm", "693_J2KR.dcm"),
        ("MR_small.dcm", "MR_small_RLE.dcm"),
        ("MR_small.dcm", "MR_small_expb.dcm"),
    ],
)
def test_lossless_copies_load_to_identical_volumes(plain, packed):
    a = load_volume(index_sources([_path(plain)]).series[0])
    b = load_volume(index_sources([_path(packed)]).series[0])
    np.testing.assert_array_equal(a.voxels, b.voxels)
    assert a.spacing == b.spacing and a.origin == b.origin


def test_enhanced_multiframe_ct_loads_like_a_classic_series():
    path = _path("eCT_Supplemental.dcm")
    series = index_sources([path]).series[0]
    assert series.instance_count == 1 and len(series.slices) == 2
    volume = load_volume(series)
    ds = pydicom.dcmread(path)
    frames, shared = ds.PerFrameFunctionalGroupsSequence, ds.SharedFunctionalGroupsSequence[0]
    positions = [
        [float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient] for f in frames
    ]
    iop = [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient]
    normal = np.cross(iop[:3], iop[3:])  # this file's rows run right-to-left: normal is -z
    order = np.argsort(np.array(positions) @ normal)
    np.testing.assert_allclose(volume.slice_positions, np.array(positions)[order])
    transform = shared.PixelValueTransformationSequence[0]
    expected = ds.pixel_array[order] * float(transform.RescaleSlope) + float(
        transform.RescaleIntercept
    )
    np.testing.assert_array_equal(volume.voxels, expected)
    assert volume.spacing[0] == pytest.approx(abs(positions[1][2] - positions[0][2]))


ODD = [
    "MR_truncated.dcm",
    "rtplan.dcm",
    "no_meta.dcm",
    "badVR.dcm",
    "bad_sequence.dcm",
    "explicit_VR-UN.dcm",
    "emri_small_jpeg_2k_lossless_too_short.dcm",
    "rtplan_truncated.dcm",
    "JPEG2000-embedded-sequence-delimiter.dcm",
    "GDCMJ2K_TextGBR.dcm",
    "liver_1frame.dcm",
    "reportsi.dcm",
    "UN_sequence.dcm",
    "nested_priv_SQ.dcm",
    "J2K_pixelrep_mismatch.dcm",
]


def test_odd_files_never_crash_and_every_unused_file_has_a_reason():
    paths = [p for p in (get_testdata_file(n) for n in ODD) if p is not None]
    index = index_sources(paths)
    explained = {p.file for p in index.problems}
    loaded = set()
    for series in index.series:
        explained |= {str(s.ref) for s, _ in series.excluded}
        try:
            volume = load_volume(series)
        except LoadError as exc:
            assert str(exc), "a load error must say why"
            explained |= {str(s.ref) for s in series.slices}
            continue
        dropped = {
            str(s.ref) for s in series.slices if any(str(s.ref) in p for p in volume.problems)
        }
        explained |= dropped
        loaded |= {str(s.ref) for s in series.slices} - dropped
    assert {str(p) for p in paths} <= explained | loaded
    causes = {p.file.rsplit("/", 1)[-1]: p.cause for p in index.problems}
    assert causes["rtplan.dcm"].startswith("no image")
    assert causes["no_meta.dcm"] == "not a DICOM file"
