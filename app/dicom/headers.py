"""Reads one file's DICOM header (never its pixels) into SliceInfo records, safely and quickly.

Bytes are read into memory first (a prefix, the whole file only when the header is longer), so a
corrupted length field can never make pydicom allocate more than the file holds or loop.
Plain Part 10 headers (the usual CT slice) are read with pydicom's element generator alone,
without building Datasets (a third of the time); anything else, and anything odd, goes through
dcmread, and both give the same result (tests/dicom/test_dicom_fast_paths.py).
Registers identifying values with app.phi and never logs them. Must not import Qt.
"""

from __future__ import annotations

import io
from typing import Any

import pydicom
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import ENCODED_VR, data_element_generator
from pydicom.misc import size_in_bytes
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag, Tag
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pydicom.valuerep import VR
from pydicom.values import convert_value

from app.dicom.model import NOT_DICOM, FileRef, SliceInfo
from app.phi import IDENTIFYING_KEYWORDS, register_identifiers

HEADER_PREFIX = 64 * 1024
MAX_FRAMES = 10_000
MAX_PIXELS_PER_FRAME = 8192 * 8192
DEFER_SIZE = "256 KB"
FAST_HEADERS = True
"""Read plain Part 10 headers with pydicom's element generator alone (see _fast_values)."""
_PIXEL_TAG_LE = b"\xe0\x7f\x10\x00"
_PIXEL_TAG_BE = b"\x7f\xe0\x00\x10"
_MULTI_FRAME_GROUPS = ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence")

_GEOMETRY_GROUPS = (
    "PlaneOrientationSequence",
    "PixelMeasuresSequence",
    "PixelValueTransformationSequence",
)
_SERIES_TEXT = (
    "SeriesDescription",
    "SeriesNumber",
    "ConvolutionKernel",
    "StudyDate",
    "StudyDescription",
    "PatientID",
    "PatientName",
)
_IMAGE_KEYWORDS = (
    "SOPInstanceUID",
    "SeriesInstanceUID",
    "StudyInstanceUID",
    "Modality",
    "SOPClassUID",
    "FrameOfReferenceUID",
    "InstanceNumber",
    "AcquisitionNumber",
    "TemporalPositionIndex",
    "ImageType",
    "GantryDetectorTilt",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "SamplesPerPixel",
    "PlanarConfiguration",
    "PhotometricInterpretation",
    "NumberOfFrames",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "RescaleSlope",
    "RescaleIntercept",
    "PixelData",
)
NEEDED_TAGS = list(
    dict.fromkeys(_IMAGE_KEYWORDS + _SERIES_TEXT + IDENTIFYING_KEYWORDS + _MULTI_FRAME_GROUPS)
)
"""Only these elements are kept when parsing a header (pydicom specific_tags)."""
_NEEDED_TAG_NUMBERS = [int(Tag(keyword)) for keyword in NEEDED_TAGS]
"""The same as plain int tag numbers: pydicom converts keywords to tags on every call otherwise,
and its set of wanted tags compares plain ints in C (BaseTag compares in Python)."""
_KEYWORDS = dict(zip(_NEEDED_TAG_NUMBERS, NEEDED_TAGS, strict=True))
_DICTIONARY_VRS = {tag: dictionary_VR(tag) for tag in _NEEDED_TAG_NUMBERS}
"""The needed elements' VRs, for implicit-VR files (pydicom's lookup is slower; see _vr)."""
_DEFER_BYTES = size_in_bytes(DEFER_SIZE)
_TRANSFER_SYNTAX_TAG = 0x00020010
_CHARSET_TAG = 0x00080005
_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})  # float, double, integer pixels
_DATASET_VRS = frozenset({VR.SQ, VR.OB, VR.OW, VR.UN})
"""Values that need a Dataset to resolve (sequences) or are not plain attributes."""
_KNOWN_VRS = frozenset(str(vr) for vr in VR)


def _needs_dataset(vr: str) -> bool:
    """Sequences, binary and ambiguous VRs: pydicom resolves them with the Dataset around them."""
    return vr in _DATASET_VRS or " or " in vr


def _vr(element: RawDataElement) -> str:
    """The element's VR: as written (explicit VR), else from the data dictionary."""
    return element.VR or _DICTIONARY_VRS.get(int(element.tag)) or dictionary_VR(element.tag)


def _not_file_meta(tag: BaseTag, vr: str | None, length: int) -> bool:
    return tag >> 16 != 2


def _at_pixel_data(tag: BaseTag, vr: str | None, length: int) -> bool:
    return tag in _PIXEL_TAGS

# We report invalid values ourselves; pydicom's per-value warnings would only add noise.
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE


class HeaderError(Exception):
    """The file cannot be used; the message says why in words a user understands.

    ``cacheable`` is False when the cause may be passing (the file could not be read).
    """

    def __init__(self, message: str, cacheable: bool = True) -> None:
        super().__init__(message)
        self.cacheable = cacheable


def _looks_like_raw_dataset(data: bytes) -> bool:
    """A file without the DICM preamble may still be a bare data set starting at group 0002/0008."""
    if len(data) < 8:
        return False
    little, big = int.from_bytes(data[:2], "little"), int.from_bytes(data[:2], "big")
    return little in (0x0002, 0x0008) or big in (0x0002, 0x0008)


def _parse(data: bytes) -> tuple[Dataset, int]:
    buffer = io.BytesIO(data)
    options = {
        "stop_before_pixels": True,
        "defer_size": _DEFER_BYTES,
        "specific_tags": _NEEDED_TAG_NUMBERS,
    }
    try:
        ds = pydicom.dcmread(buffer, **options)
    except InvalidDicomError:
        if not _looks_like_raw_dataset(data):
            raise HeaderError(NOT_DICOM) from None
        buffer = io.BytesIO(data)
        ds = pydicom.dcmread(buffer, force=True, **options)
        if "SOPInstanceUID" not in ds:
            raise HeaderError(NOT_DICOM) from None
    return ds, buffer.tell()


def _as_dict(ds: Dataset | None) -> dict[str, Any]:
    """Keyword -> value for the elements present; a value that cannot be converted is left out.

    Converts raw elements with pydicom's convert_value directly (no DataElement objects),
    which is most of the cost of indexing a header.
    """
    values: dict[str, Any] = {}
    if ds is None:
        return values
    encodings = ds.original_character_set
    for element in ds.elements():
        try:
            keyword = _KEYWORDS.get(element.tag) or keyword_for_tag(element.tag)
            if isinstance(element, RawDataElement):
                vr = _vr(element)
                if _needs_dataset(vr):
                    element = ds[element.tag]  # let pydicom resolve sequences and ambiguous VRs
                    values[keyword] = element.value
                else:
                    values[keyword] = convert_value(vr, element, encodings)
            else:
                values[keyword] = element.value
        except Exception:  # noqa: BLE001 - a corrupted value is treated as missing
            continue
    return values


def _meta_syntax(buffer: io.BytesIO) -> tuple[str, bool] | None:
    """The transfer syntax in the file meta group at the buffer's position, and whether it is
    implicit VR; None where the fast path does not apply (no syntax, big endian, deflated, a
    private or unknown syntax: dcmread handles those)."""
    meta = {}
    for e in data_element_generator(buffer, False, True, stop_when=_not_file_meta):
        if not isinstance(e, RawDataElement) or e.VR not in _KNOWN_VRS:
            return None  # dcmread retries odd meta groups as implicit VR, or refuses them
        meta[e.tag] = e
    element = meta.get(_TRANSFER_SYNTAX_TAG)
    if element is None or element.VR != VR.UI or not element.value:
        return None
    syntax = UID(element.value.decode("ascii").strip("\0 "))
    if syntax == ImplicitVRLittleEndian:
        return syntax, True
    if syntax == ExplicitVRLittleEndian or (
        syntax.is_transfer_syntax
        and syntax.is_encapsulated
        and syntax.is_little_endian
        and not syntax.is_deflated
    ):
        return syntax, False
    return None


def _explicit_vr_at(data: bytes, position: int) -> bool:
    return data[position + 4 : position + 6] in ENCODED_VR


def _fast_values(data: bytes) -> tuple[dict[str, Any], str, int] | None:
    """The needed values, the transfer syntax and the offset where reading stopped, read with
    pydicom's element generator alone (no Dataset objects: most of dcmread's cost on a plain CT
    header), or None where this does not apply and dcmread must read the file.

    Applies to the common case only: a Part 10 file (preamble and file meta) in little-endian
    implicit or explicit VR or an encapsulated syntax, whose needed elements are plain values.
    Sequences (Enhanced CT), ambiguous VRs, a dataset that disagrees with its declared VR, a
    command group, a header longer than the prefix, all go to dcmread."""
    if len(data) < 140 or data[128:132] != b"DICM":
        return None
    buffer = io.BytesIO(data)
    buffer.seek(132)
    found = _meta_syntax(buffer)
    if found is None:
        return None
    syntax, implicit = found
    start = buffer.tell()
    if len(data) < start + 8 or data[start : start + 2] == b"\0\0":
        return None  # nothing after the meta group, or a command group
    if _explicit_vr_at(data, start) == implicit:
        return None  # the dataset is not encoded as the syntax says: dcmread's heuristics
    elements = list(
        data_element_generator(
            buffer,
            implicit,
            True,
            stop_when=_at_pixel_data,
            defer_size=_DEFER_BYTES,
            specific_tags=_NEEDED_TAG_NUMBERS,
        )
    )
    stop = buffer.tell()
    if stop >= len(data) - 8:
        return None  # the header may go on past the prefix
    raw: list[tuple[int, str, RawDataElement]] = []
    encodings: str | list[str] = default_encoding
    for element in elements:
        if not isinstance(element, RawDataElement):
            return None  # an undefined-length sequence
        if element.VR is not None and element.VR not in _KNOWN_VRS:
            return None  # a corrupted VR: dcmread reports the file as unreadable
        tag = int(element.tag)  # plain int: dict lookups without BaseTag's Python __eq__
        vr = _vr(element)
        if _needs_dataset(vr):
            return None
        if tag == _CHARSET_TAG:
            encodings = convert_encodings(convert_value(VR.CS, element) or "")
        raw.append((tag, vr, element))
    values: dict[str, Any] = {}
    for tag, vr, element in raw:
        keyword = _KEYWORDS.get(tag) or keyword_for_tag(tag)
        try:
            values[keyword] = convert_value(vr, element, encodings)
        except Exception:  # noqa: BLE001 - a corrupted value is treated as missing, as in _as_dict
            continue
    return values, str(syntax), stop


def _try_fast_values(data: bytes) -> tuple[dict[str, Any], str, int] | None:
    try:
        return _fast_values(data) if FAST_HEADERS else None
    except Exception:  # noqa: BLE001 - anything odd: dcmread reads it and names the problem
        return None


def _read_prefix(ref: FileRef) -> tuple[bytes, int]:
    size = ref.size()
    return ref.read(HEADER_PREFIX), size


def _read_dataset(ref: FileRef, data: bytes, size: int) -> tuple[Dataset, int | None]:
    """The header read by dcmread from `data` (the file's first bytes; the whole file when the
    header is longer) and the PixelData element's offset (None if absent/unknown)."""
    try:
        ds, stop = _parse(data)
    except HeaderError:
        raise
    except Exception:  # noqa: BLE001 - e.g. a deflated stream cut at the prefix: read it all
        if size <= len(data):
            raise
        stop = len(data)
    if stop >= len(data) - 8 and size > len(data):
        data = ref.read()  # the header is longer than the prefix (e.g. Enhanced CT, deflated)
        ds, stop = _parse(data)
    tsyntax = ds.file_meta.get("TransferSyntaxUID", "") if hasattr(ds, "file_meta") else ""
    return ds, _pixel_offset(data, stop, tsyntax)


def _pixel_offset(data: bytes, stop: int, tsyntax: str) -> int | None:
    """The PixelData element's offset in the file if reading stopped at it, else None."""
    tag = _PIXEL_TAG_BE if tsyntax == ExplicitVRBigEndian else _PIXEL_TAG_LE
    if data[stop : stop + 4] != tag:
        return None
    # Deflated data sets are compressed as a whole, so the offset in the file means nothing.
    return None if tsyntax == DeflatedExplicitVRLittleEndian else stop


def _value(values: dict[str, Any], keyword: str, default: Any = None) -> Any:
    value = values.get(keyword)
    if value is None or (isinstance(value, str | bytes) and not value):
        return default
    return value


def _floats(ds: dict[str, Any] | None, keyword: str, count: int) -> tuple[float, ...] | None:
    if ds is None:
        return None
    value = _value(ds, keyword)
    try:
        values = value if isinstance(value, list | tuple | MultiValue) else [value]
        numbers = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        return None
    if len(numbers) != count or not all(abs(n) < 1e7 for n in numbers):
        return None
    return numbers


def _int(ds: dict[str, Any] | None, keyword: str) -> int | None:
    value = _value(ds, keyword) if ds is not None else None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _text(ds: dict[str, Any], keyword: str) -> str:
    value = _value(ds, keyword, "")
    if isinstance(value, list | tuple | MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value)


def _identifiers(ds: dict[str, Any]) -> set[str]:
    return {text for kw in IDENTIFYING_KEYWORDS if (text := _text(ds, kw))}


def _common(
    ds: dict[str, Any], ref: FileRef, size: int, offset: int | None, tsyntax: str
) -> dict[str, Any]:
    image_type = _value(ds, "ImageType", ())
    return {
        "ref": ref,
        "SOPInstanceUID": _text(ds, "SOPInstanceUID"),
        "SeriesInstanceUID": _text(ds, "SeriesInstanceUID"),
        "StudyInstanceUID": _text(ds, "StudyInstanceUID"),
        "Modality": _text(ds, "Modality"),
        "SOPClassUID": _text(ds, "SOPClassUID"),
        "TransferSyntaxUID": tsyntax,
        "FrameOfReferenceUID": _text(ds, "FrameOfReferenceUID"),
        "InstanceNumber": _int(ds, "InstanceNumber"),
        "AcquisitionNumber": _int(ds, "AcquisitionNumber"),
        "TemporalPositionIndex": _int(ds, "TemporalPositionIndex"),
        "ImageType": tuple(str(v) for v in image_type)
        if not isinstance(image_type, str)
        else (image_type,),
        "GantryDetectorTilt": (_floats(ds, "GantryDetectorTilt", 1) or (None,))[0],
        "Rows": _int(ds, "Rows") or 0,
        "Columns": _int(ds, "Columns") or 0,
        "BitsAllocated": _int(ds, "BitsAllocated") or 0,
        "BitsStored": _int(ds, "BitsStored") or _int(ds, "BitsAllocated") or 0,
        "PixelRepresentation": _int(ds, "PixelRepresentation") or 0,
        "SamplesPerPixel": _int(ds, "SamplesPerPixel") or 1,
        "PlanarConfiguration": _int(ds, "PlanarConfiguration") or 0,
        "PhotometricInterpretation": _text(ds, "PhotometricInterpretation"),
        "pixel_offset": offset,
        "file_size": size,
    }


def _geometry(*sources: dict[str, Any] | None) -> dict[str, Any]:
    """Geometry and rescale from the first source that has each attribute."""

    def first(keyword: str, count: int) -> tuple[float, ...] | None:
        return next((v for s in sources if (v := _floats(s, keyword, count)) is not None), None)

    slope, intercept = first("RescaleSlope", 1), first("RescaleIntercept", 1)
    thickness = first("SliceThickness", 1)
    return {
        "ImagePositionPatient": first("ImagePositionPatient", 3),
        "ImageOrientationPatient": first("ImageOrientationPatient", 6),
        "PixelSpacing": first("PixelSpacing", 2),
        "SliceThickness": thickness[0] if thickness else None,
        "RescaleSlope": slope[0] if slope and slope[0] != 0 else 1.0,
        "RescaleIntercept": intercept[0] if intercept else 0.0,
        "rescale_missing": not (slope and intercept and slope[0] != 0),
    }


def _group(item: dict[str, Any] | None, sequence: str) -> dict[str, Any] | None:
    """The first item of a functional-group sequence, as a keyword -> value dict."""
    seq = _value(item, sequence) if item is not None else None
    try:
        return _as_dict(seq[0]) if seq else None
    except Exception:  # noqa: BLE001 - a corrupted sequence counts as missing
        return None


def _frames(ds: dict[str, Any], common: dict[str, Any], count: int) -> list[SliceInfo]:
    """One SliceInfo per frame of an Enhanced (per-frame functional groups) image."""
    shared = _group(ds, "SharedFunctionalGroupsSequence")
    per_frame = _value(ds, "PerFrameFunctionalGroupsSequence") or []
    shared_groups = [_group(shared, name) for name in _GEOMETRY_GROUPS]
    frame_kinds = ("CTImageFrameTypeSequence", "MRImageFrameTypeSequence")
    shared_type = next((g for name in frame_kinds if (g := _group(shared, name))), None)
    slices = []
    for index in range(count):
        item = _as_dict(per_frame[index]) if index < len(per_frame) else None
        groups = [_group(item, name) for name in ("PlanePositionSequence", *_GEOMETRY_GROUPS)]
        info = dict(common, **_geometry(*groups, *shared_groups, ds))
        frame_type = next((g for name in frame_kinds if (g := _group(item, name))), shared_type)
        if frame_type and _value(frame_type, "FrameType"):
            info["ImageType"] = tuple(str(v) for v in frame_type["FrameType"])
        content = _group(item, "FrameContentSequence")
        info["TemporalPositionIndex"] = (
            _int(content, "TemporalPositionIndex") or info["TemporalPositionIndex"]
        )
        slices.append(SliceInfo(frame=index, number_of_frames=count, **info))
    return slices


def _check_size(common: dict[str, Any], count: int, tsyntax: str) -> None:
    """Refuse sizes no real image has, and native pixel data shorter than the image needs."""
    if not 0 < count <= MAX_FRAMES:
        raise HeaderError(f"implausible NumberOfFrames {count}")
    if common["Rows"] * common["Columns"] > MAX_PIXELS_PER_FRAME:
        raise HeaderError(f"implausible image size {common['Rows']}x{common['Columns']}")
    offset = common["pixel_offset"]
    try:
        native = not UID(tsyntax).is_encapsulated if tsyntax else True
    except ValueError:
        native = True
    if offset is None or not native or tsyntax == DeflatedExplicitVRLittleEndian:
        return
    pixels = common["Rows"] * common["Columns"] * common["SamplesPerPixel"] * count
    needed = (pixels * common["BitsAllocated"] + 7) // 8
    if common["file_size"] - offset < needed:
        raise HeaderError(
            f"pixel data is shorter than {common['Rows']}x{common['Columns']}x{count} images need "
            "(truncated file?)"
        )


def read_header(
    ref: FileRef, identifiers: set[str] | None = None
) -> tuple[list[SliceInfo], dict[str, str]]:
    """The images in one file and its series-level text attributes; HeaderError if unusable.

    Identifying values go into `identifiers` when given (the caller registers them with
    app.phi in one batch before it logs anything), else they are registered at once.
    """
    try:
        data, size = _read_prefix(ref)
        fast = _try_fast_values(data)
        if fast is not None:
            ds, tsyntax, stop = fast
            offset = _pixel_offset(data, stop, tsyntax)
        else:
            dataset, offset = _read_dataset(ref, data, size)
            tsyntax = (
                str(dataset.file_meta.get("TransferSyntaxUID", ""))
                if hasattr(dataset, "file_meta")
                else ""
            )
            ds = _as_dict(dataset)
    except HeaderError:
        raise
    except OSError as exc:  # the file could not be read (now): report it, never cache it
        cause = f"unreadable DICOM ({type(exc).__name__}: {str(exc)[:120]})"
        raise HeaderError(cause, cacheable=False) from None
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds on corrupted input
        raise HeaderError(f"unreadable DICOM ({type(exc).__name__}: {str(exc)[:120]})") from None
    if identifiers is None:
        register_identifiers(list(_identifiers(ds)))
    else:
        identifiers |= _identifiers(ds)
    common = _common(ds, ref, size, offset, tsyntax)
    for keyword in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"):
        if not common[keyword]:
            raise HeaderError(f"missing {keyword}")
    deflated = tsyntax == DeflatedExplicitVRLittleEndian
    # Reading stops before the pixel data, so an image is known by its PixelData offset.
    if offset is None and not (deflated and common["Rows"]):
        raise HeaderError(f"no image (SOP class {common['SOPClassUID'] or 'unknown'})")
    for keyword in ("Rows", "Columns", "BitsAllocated"):
        if not common[keyword]:
            raise HeaderError(f"missing {keyword}")
    series_meta = {kw: _text(ds, kw) for kw in _SERIES_TEXT}
    count = _int(ds, "NumberOfFrames") or 1
    _check_size(common, count, tsyntax)
    if count > 1 or any(kw in ds for kw in _MULTI_FRAME_GROUPS):
        return _frames(ds, common, count), series_meta
    return [SliceInfo(**common, **_geometry(ds))], series_meta
