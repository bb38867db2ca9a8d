"""Loads an indexed series into a Volume: pixels per file into one preallocated HU array.

Pixel data is decoded by pydicom's decoders (native, deflated, JPEG, JPEG-LS, JPEG 2000, RLE via
the installed plugins) on a small thread pool; native little-endian 16-bit slices with a slope
of 1 (most CT) are read straight from the file into the volume instead, with the same values.
A file that cannot be decoded is dropped and reported in Volume.problems. Must not import Qt.
"""

from __future__ import annotations

import functools
import io
import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pydicom
from pydicom.filereader import data_element_generator, read_dataset
from pydicom.pixels import get_decoder
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from app.dicom.geometry import TILT_DEGREES, analyse_spacing, shear_mm, shear_pixels, slice_normal
from app.dicom.model import FileRef, SeriesInfo, SliceInfo
from app.tasks import CancelToken, Progress, Task, run_sync
from app.volume import Volume

log = logging.getLogger("app.dicom.loader")
LOAD_THREADS = 2
CHUNK_FILES = 8
CHUNK_BYTES = 4 * 1024 * 1024
"""A thread-pool job decodes at most CHUNK_FILES files and about CHUNK_BYTES of pixels."""
_INT16 = np.iinfo(np.int16)
_NATIVE_16 = (np.dtype(np.int16), np.dtype(np.uint16))
_NATIVE_LITTLE_ENDIAN = (
    pydicom.uid.ImplicitVRLittleEndian,
    pydicom.uid.ExplicitVRLittleEndian,
)
_PIXEL_DATA = 0x7FE00010
_UNDEFINED = 0xFFFFFFFF


class LoadError(Exception):
    """The series cannot be made into a volume; the message says why."""


def _is_integer(value: float) -> bool:
    return float(value).is_integer()


def _decoder_options(item: SliceInfo) -> dict[str, object]:
    return {
        "rows": item.Rows,
        "columns": item.Columns,
        "samples_per_pixel": item.SamplesPerPixel,
        "bits_allocated": item.BitsAllocated,
        "bits_stored": item.BitsStored,
        "pixel_representation": item.PixelRepresentation,
        "number_of_frames": item.number_of_frames,
        "photometric_interpretation": item.PhotometricInterpretation or "MONOCHROME2",
        "pixel_keyword": "PixelData",
        "planar_configuration": item.PlanarConfiguration,
        "allow_excess_frames": False,
    }


def _pixel_value(head: bytes, syntax: UID) -> tuple[int, int] | None:
    """(where the value starts, its length) of a defined-length PixelData element whose header
    opens `head` (12 bytes suffice), read by pydicom; None if `head` holds no such element."""
    element = next(
        data_element_generator(
            io.BytesIO(head), syntax.is_implicit_VR, syntax.is_little_endian, defer_size=0
        ),
        None,
    )
    if element is None or element.tag != _PIXEL_DATA or element.length == _UNDEFINED:
        return None
    return element.value_tell, element.length


def _native_pixels(data: memoryview, offset: int, syntax: UID) -> memoryview | None:
    """The PixelData value as a view on `data` (no copy), located by pydicom from its offset."""
    value = _pixel_value(bytes(data[offset : offset + 12]), syntax)
    if value is None:
        return None
    start = offset + value[0]
    return data[start : start + value[1]]


def _pixel_source(data: bytearray | bytes, item: SliceInfo, syntax: UID) -> object | None:
    """What the decoder reads: a view on native pixels, the encapsulated bytes, or None."""
    if item.pixel_offset is None or syntax == DeflatedExplicitVRLittleEndian:
        return None
    if not syntax.is_encapsulated:
        return _native_pixels(memoryview(data), item.pixel_offset, syntax)
    buffer = io.BytesIO(data)
    buffer.seek(item.pixel_offset)
    return read_dataset(buffer, syntax.is_implicit_VR, syntax.is_little_endian).get("PixelData")


@functools.lru_cache(maxsize=64)
def _syntax(uid: str) -> UID:
    return UID(uid)


def _item_syntax(item: SliceInfo) -> UID:
    """The transfer syntax of the file holding `item` (implicit VR little endian if unstated)."""
    return _syntax(item.TransferSyntaxUID or pydicom.uid.ImplicitVRLittleEndian)


@functools.lru_cache(maxsize=64)
def _decoder(syntax: UID):  # noqa: ANN202 - a pydicom Decoder
    return get_decoder(syntax)


def read_pixels(item: SliceInfo) -> np.ndarray:
    """All frames of the file holding `item` as stored values, shape (frames, rows, columns).

    Native pixel data is decoded in place in the file's buffer (one read, no copies).
    """
    data = item.ref.read_buffer()
    syntax = _item_syntax(item)
    source = _pixel_source(data, item, syntax)
    if source is not None:
        array = _decoder(syntax).as_array(source, **_decoder_options(item))[0]
    else:  # offset unknown (deflated, or the file changed since indexing): read it all
        ds = pydicom.dcmread(io.BytesIO(data))
        array = get_decoder(ds.file_meta.TransferSyntaxUID).as_array(ds)[0]
    expected: tuple[int, ...] = (item.number_of_frames, item.Rows, item.Columns)
    if item.SamplesPerPixel > 1:
        expected += (item.SamplesPerPixel,)
    array = array.reshape(expected) if array.size == int(np.prod(expected)) else array
    if array.shape != expected:
        raise ValueError(f"pixel data has shape {array.shape}, expected {expected}")
    return array


def _fits_int16(low: float, high: float, slope: float, intercept: float) -> bool:
    ends = (low * slope + intercept, high * slope + intercept)
    return min(ends) >= _INT16.min and max(ends) <= _INT16.max


def _stored_range(item: SliceInfo) -> tuple[int, int] | None:
    """The values BitsStored bits can hold, for native pixel data (pydicom clears or sign-extends
    its unused bits); None for compressed data, whose decoders need not keep to BitsStored."""
    if _item_syntax(item).is_encapsulated:
        return None
    bits = max(1, min(item.BitsStored or item.BitsAllocated, 32))
    if item.PixelRepresentation:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _fits(raw: np.ndarray, item: SliceInfo, slope: float, intercept: float) -> bool:
    """Whether the HU of `raw` fit int16: from the range the stored bits can hold where that
    suffices, else by scanning the pixels (e.g. 16-bit data). Unsigned pixels with a positive
    slope need only their maximum: the low end, intercept or more, fits once the intercept does."""
    stored = _stored_range(item)
    if raw.dtype.itemsize <= 2 and stored is not None and _fits_int16(*stored, slope, intercept):
        return True
    if raw.dtype.kind == "u" and slope > 0 and intercept >= _INT16.min:
        return float(raw.max()) * slope + intercept <= _INT16.max
    return _fits_int16(float(raw.min()), float(raw.max()), slope, intercept)


def _store(raw: np.ndarray, item: SliceInfo, target: np.ndarray) -> bool:
    """Write HU into target; False when an int16 target cannot hold this slice exactly."""
    slope, intercept = item.RescaleSlope, item.RescaleIntercept
    if target.dtype == np.int16:
        if not _fits(raw, item, slope, intercept):
            return False
        if slope == 1 and raw.dtype in _NATIVE_16 and _INT16.min <= intercept <= _INT16.max:
            # One int16 pass over an int16 view. int16 addition wraps modulo 2**16, so even
            # unsigned values above 32767 (read as negative) come out exact, as the true result
            # was checked to fit int16. Not for big-endian arrays, which a native view misreads.
            np.add(raw.view(np.int16), np.int16(intercept), out=target)
            return True
        # One pass, computed in int32 (exact: the result was checked to fit int16).
        if slope != 1:
            np.multiply(raw, np.int32(slope), out=target, casting="unsafe")
            if intercept:
                target += np.int16(intercept)
        else:
            np.add(raw, np.int32(intercept), out=target, casting="unsafe")
        return True
    target[...] = raw
    if slope != 1:
        target *= np.float32(slope)
    if intercept:
        target += np.float32(intercept)
    return True


def _can_read_direct(item: SliceInfo, target: np.ndarray) -> bool:
    """Whether a file's pixels can be read straight into an int16 slice (_read_direct)."""
    return not (
        target.dtype != np.int16
        or item.ref.member is not None
        or item.pixel_offset is None
        or item.number_of_frames != 1
        or item.SamplesPerPixel != 1
        or item.BitsAllocated != 16
        or not 0 < item.BitsStored <= 16
        or item.RescaleSlope != 1
        or not _INT16.min <= item.RescaleIntercept <= _INT16.max
        or _item_syntax(item) not in _NATIVE_LITTLE_ENDIAN
    )


def _read_direct(item: SliceInfo, target: np.ndarray) -> bool:
    """Read native little-endian 16-bit pixels from the file straight into `target` and make
    them HU in place: no file buffer, no copy. False when the file does not hold what the
    header promised (the caller then decodes it the ordinary way) or the HU overflow int16.

    Gives exactly what pydicom's native decoder and _store give (tested): unused high bits are
    cleared or sign-extended as pydicom does, then the intercept is added with int16 wrap-around
    (exact, as the result is checked to fit)."""
    offset = item.pixel_offset
    if offset is None:  # _can_read_direct refuses these; kept for the type checker
        return False
    syntax = _item_syntax(item)
    with open(item.ref.path, "rb") as handle:
        handle.seek(offset)
        value = _pixel_value(handle.read(12), syntax)
        if value is None or value[1] != target.nbytes:
            return False
        handle.seek(offset + value[0])
        if handle.readinto(memoryview(target).cast("B")) != target.nbytes:
            return False
    signed = bool(item.PixelRepresentation)
    raw = target if signed else target.view(np.uint16)
    shift = 16 - item.BitsStored
    if shift and signed:  # sign-extend from the highest stored bit
        np.left_shift(raw, shift, out=raw)
        np.right_shift(raw, shift, out=raw)
    elif shift:  # clear the unused bits: the same as pydicom's two shifts, in one pass
        np.bitwise_and(raw, np.uint16((1 << item.BitsStored) - 1), out=raw)
    intercept = item.RescaleIntercept
    if not _fits(raw, item, 1, intercept):
        return False
    if intercept:
        target += np.int16(intercept)
    return True


def _decode_file(entries: list[tuple[int, SliceInfo]], out: np.ndarray) -> list[int]:
    """Decode one file into its slices of `out`; returns z indices that overflowed int16."""
    z, item = entries[0]
    if len(entries) == 1 and _can_read_direct(item, out) and _read_direct(item, out[z]):
        return []
    frames = read_pixels(item)
    overflow = []
    for z, item in entries:
        if not _store(frames[item.frame or 0], item, out[z]):
            overflow.append(z)
    return overflow


def _decode_files(
    files: list[tuple[FileRef, list[tuple[int, SliceInfo]]]], out: np.ndarray
) -> tuple[list[int], dict[FileRef, str]]:
    """Decode several files into `out`: the z indices that overflowed int16, and the files that
    could not be decoded with the cause."""
    overflow: list[int] = []
    failures: dict[FileRef, str] = {}
    for ref, entries in files:
        try:
            overflow.extend(_decode_file(entries, out))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - any decoder failure (even a Rust panic) drops the file
            failures[ref] = f"{type(exc).__name__}: {str(exc)[:160]}"
    return overflow, failures


def _plan(series: SeriesInfo) -> dict[FileRef, list[tuple[int, SliceInfo]]]:
    by_file: dict[FileRef, list[tuple[int, SliceInfo]]] = defaultdict(list)
    for z, item in enumerate(series.slices):
        by_file[item.ref].append((z, item))
    return by_file


def _chunks(
    plan: dict[FileRef, list[tuple[int, SliceInfo]]],
) -> list[list[tuple[FileRef, list[tuple[int, SliceInfo]]]]]:
    """Consecutive files in groups of at most CHUNK_FILES and about CHUNK_BYTES of pixels."""
    chunks: list[list[tuple[FileRef, list[tuple[int, SliceInfo]]]]] = [[]]
    size = 0
    for ref, entries in plan.items():
        item = entries[0][1]
        if len(chunks[-1]) >= CHUNK_FILES or (chunks[-1] and size >= CHUNK_BYTES):
            chunks.append([])
            size = 0
        chunks[-1].append((ref, entries))
        size += item.Rows * item.Columns * max(1, item.BitsAllocated // 8) * item.number_of_frames
    return chunks


def _run_pool(
    plan: dict[FileRef, list[tuple[int, SliceInfo]]],
    out: np.ndarray,
    cancel: CancelToken | None,
    failures: dict[FileRef, str],
) -> Task[list[int]]:
    """Decode on LOAD_THREADS threads, a chunk of files per job: a job per file spent more time
    handing work and the GIL between threads than decoding (64 files: 34 -> 26 ms)."""
    overflow: list[int] = []
    chunks = _chunks(plan)
    pool = ThreadPoolExecutor(LOAD_THREADS, thread_name_prefix="dicom-load")
    try:
        futures = [pool.submit(_decode_files, chunk, out) for chunk in chunks]
        done = 0
        for chunk, future in zip(chunks, futures, strict=True):
            if cancel is not None:
                cancel.raise_if_cancelled()
            chunk_overflow, chunk_failures = future.result()
            overflow.extend(chunk_overflow)
            failures.update(chunk_failures)
            done += len(chunk)
            yield Progress(done / len(plan), f"loading images: {done} of {len(plan)} files")
        if cancel is not None:
            cancel.raise_if_cancelled()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return overflow


def load_volume_task(series: SeriesInfo, cancel: CancelToken | None = None) -> Task[Volume]:
    """Generator task: yields Progress per file and returns the Volume; raises LoadError/Cancelled."""
    if not series.loadable or not series.slices:
        raise LoadError("; ".join(series.problems) or "series has no usable images")
    slices = series.slices
    exact = all(_is_integer(s.RescaleSlope) and _is_integer(s.RescaleIntercept) for s in slices)
    out = np.empty(
        (len(slices), slices[0].Rows, slices[0].Columns), np.int16 if exact else np.float32
    )
    plan = _plan(series)
    failures: dict[FileRef, str] = {}
    overflow = yield from _run_pool(plan, out, cancel, failures)
    if overflow:  # rare: values beyond int16; redo those slices in float32
        out = out.astype(np.float32)
        for z in overflow:
            _store(read_pixels(slices[z])[slices[z].frame or 0], slices[z], out[z])
    return _assemble(series, out, failures)


def _assemble(series: SeriesInfo, out: np.ndarray, failures: dict[FileRef, str]) -> Volume:
    problems = list(series.problems)
    slices = series.slices
    if failures:
        keep = np.array([s.ref not in failures for s in slices])
        if not keep.any():
            raise LoadError(
                "no image of the series could be decoded: " + next(iter(failures.values()))
            )
        out = out[keep]
        slices = [s for s, k in zip(slices, keep, strict=True) if k]
        problems += [
            f"{ref}: could not be decoded ({cause}); slice dropped"
            for ref, cause in failures.items()
        ]
    geometry = analyse_spacing(slices, series.SliceThickness)  # of the slices kept
    if failures:
        # what the spacing analysis says, said again of the slices kept (once each)
        problems = [p for p in problems if not any(w in p for w in ("spacing", "gap", "gantry tilt"))]
        problems += geometry.problems
    first = slices[0]
    iop = first.ImageOrientationPatient
    direction = np.column_stack([iop[:3], iop[3:], slice_normal(iop)])  # type: ignore[index]
    positions = np.array([s.ImagePositionPatient for s in slices], dtype=float)
    if geometry.tilt_degrees > TILT_DEGREES:
        out = _deshear(out, shear_pixels(positions, iop, first.PixelSpacing))  # type: ignore[arg-type]
        positions = positions - shear_mm(positions, direction[:, 2])  # on the line along the normal
    spacing_z = geometry.spacing if failures else series.slice_spacing
    row_spacing, column_spacing = first.PixelSpacing  # type: ignore[misc]
    log.info(
        "loaded series %s: %s voxels (%s), %d problem(s)",
        series.log_id,
        out.shape,
        out.dtype,
        len(problems),
    )
    return Volume(
        voxels=out,
        spacing=(
            float(spacing_z or first.SliceThickness or 1.0),
            float(row_spacing),
            float(column_spacing),
        ),
        origin=tuple(float(v) for v in first.ImagePositionPatient),  # type: ignore[arg-type, union-attr]
        direction=direction,
        StudyInstanceUID=series.StudyInstanceUID,
        SeriesInstanceUID=series.SeriesInstanceUID,
        FrameOfReferenceUID=series.FrameOfReferenceUID,
        SOPInstanceUIDs=tuple(s.SOPInstanceUID for s in slices),
        slice_positions=positions,
        Modality=series.Modality,
        SeriesDescription=series.SeriesDescription,
        problems=tuple(problems),
    )


def _deshear(voxels: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Shift each slice in its plane by (rows, columns) pixels, linearly interpolated; what comes
    in from outside the image is the lowest value of the series (air)."""
    from scipy import ndimage

    out = np.empty_like(voxels)
    fill = float(voxels.min())

    def one(k: int) -> None:  # scipy releases the GIL: slices in parallel
        moved = ndimage.shift(voxels[k].astype(np.float32), shifts[k], order=1, mode="constant", cval=fill)
        out[k] = np.rint(moved) if np.issubdtype(out.dtype, np.integer) else moved

    with ThreadPoolExecutor(LOAD_THREADS, thread_name_prefix="dicom-deshear") as pool:
        list(pool.map(one, range(len(shifts))))
    return out


def load_volume(series: SeriesInfo, cancel: CancelToken | None = None) -> Volume:
    """Load a series synchronously; see load_volume_task."""
    return run_sync(load_volume_task(series, cancel))
