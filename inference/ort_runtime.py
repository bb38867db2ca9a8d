"""The only module that imports onnxruntime: sessions, providers, CPU fallback, IO binding.

CUDA runs the fp16 graphs (inputs that stay constant for a report live on the GPU through IO
binding; the CUDA memory arena is kept by reusing sessions across studies), and where it can
the one-scan vision graph and the fixed-shape decoder as captured CUDA graphs on buffers bound
once (FixedBinding); CPU runs the fp32 graphs. Any CUDA problem (provider missing, session creation failing, out of memory at run
time) falls back to CPU with a human-readable notice, never a crash.
Must not import app/, ui/, DICOM libraries or torch.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from inference.errors import CancelledError, InferenceError, PackageError
from inference.package import ModelPackage

log = logging.getLogger(__name__)
DEVICES = ("auto", "cuda", "cpu")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
_OOM_MARKERS = ("out of memory", "failed to allocate", "cudaerrormemoryallocation", "bfc_arena")
_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64}
_LOG_LOCK = threading.Lock()
ort.set_default_logger_severity(3)


def runtime_version() -> str:
    return str(ort.__version__)


def cuda_listed() -> bool:
    """True when this onnxruntime build lists the CUDA provider (not proof that it works)."""
    return CUDA in ort.get_available_providers()


@dataclass(frozen=True)
class DeviceTensor:
    """An output left where the graph made it (GPU memory under IO binding), to be fed back."""

    value: Any  # onnxruntime.OrtValue

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape())

    def numpy(self) -> np.ndarray:
        """A host copy."""
        return self.value.numpy()


class GraphSession:
    """One ONNX graph in one session; runs can be terminated from another thread."""

    def __init__(self, path: Path, device: str, threads: int | None = None,
                 cuda_graph: bool = False, fixed_dims: Mapping[str, int] | None = None) -> None:
        self.path = path
        self.device = device
        self.cuda_graph = cuda_graph and device == "cuda"
        self.fixed_dims = dict(fixed_dims or {})  # named dynamic axes fixed at load (batch: 1)
        self._lock = threading.Lock()
        self._active: ort.RunOptions | None = None
        self._terminated = False
        self._constants: dict[str, tuple[np.ndarray, Any]] = {}
        self.use_binding = device == "cuda"  # IO binding; tests may switch it on for CPU
        try:
            self.session = _create_session(path, device, threads, self.cuda_graph, self.fixed_dims)
        except InferenceError:
            raise
        except Exception as exc:  # a damaged or incompatible graph: name the file
            raise PackageError(f"ONNX Runtime cannot open {path.name} on {device.upper()}: {_short(exc)}") from exc
        self.input_types = {i.name: _DTYPES.get(i.type, np.float32) for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run_bound(self, binding: Any, graph_id: int) -> None:
        """Run on a prepared IO binding (see FixedBinding); on a CUDA-graph session, `graph_id`
        (1, 2, ...) names the captured graph that these very buffers replay."""
        options = ort.RunOptions()
        if self.cuda_graph:
            options.add_run_config_entry("gpu_graph_id", str(graph_id))
        with self._running(options):
            self.session.run_with_iobinding(binding, options)

    @contextlib.contextmanager
    def _running(self, options: Any) -> Iterator[None]:
        """A run with `options`, which terminate() can stop: then CancelledError, not ORT's error."""
        with self._lock:
            self._active, self._terminated = options, False
        try:
            yield
        except Exception as exc:
            if self._terminated:
                raise CancelledError("stopped during a model run") from exc
            raise
        finally:
            with self._lock:
                self._active = None

    def run(self, feeds: Mapping[str, Any], outputs: list[str] | None = None,
            keep_dtype: Collection[str] = (), on_device: Collection[str] = ()) -> dict[str, Any]:
        """Run with numpy feeds (cast to the graph's dtypes); return float32/int64 numpy outputs,
        except the outputs named in `keep_dtype`, which stay as the graph gives them (float16 KV
        cache fed back next step: no cast on the host either way). Under IO binding the outputs
        named in `on_device` stay on the device as `DeviceTensor`s, which later runs of this
        session take as feeds without a copy (elsewhere they come back as numpy)."""
        names = outputs or self.output_names
        options = ort.RunOptions()
        with self._running(options):
            if self.use_binding:
                values = self._run_bound(feeds, names, options, on_device)
            else:
                values = self.session.run(names, self._cast(feeds), options)
        return {n: (v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype == np.float16
                    and n not in keep_dtype else v)
                for n, v in zip(names, values, strict=True)}

    def terminate(self) -> None:
        """Ask the run in progress (if any) to stop as soon as possible."""
        with self._lock:
            if self._active is not None:
                self._terminated = True
                self._active.terminate = True

    def keep_on_device(self, name: str, array: np.ndarray) -> None:
        """Pin an input that stays the same over many runs (cross-attention K/V) on the device."""
        if not self.use_binding:
            return
        cast = np.ascontiguousarray(array, dtype=self.input_types.get(name, array.dtype))
        # Keep the array itself: the pin is used only when that very object is fed again.
        self._constants[name] = (array, ort.OrtValue.ortvalue_from_numpy(cast, self.device, 0))

    def _cast(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        host = {k: (v.numpy() if isinstance(v, DeviceTensor) else v) for k, v in feeds.items()}
        return {k: np.ascontiguousarray(v, dtype=self.input_types.get(k, v.dtype)) for k, v in host.items()}

    def _run_bound(self, feeds: Mapping[str, Any], names: list[str], options: Any,
                   on_device: Collection[str]) -> list[Any]:
        binding = self.session.io_binding()
        for name, array in feeds.items():
            pinned = self._constants.get(name)
            if isinstance(array, DeviceTensor):
                binding.bind_ortvalue_input(name, array.value)
            elif pinned is not None and pinned[0] is array:
                binding.bind_ortvalue_input(name, pinned[1])
            else:
                binding.bind_cpu_input(name, np.ascontiguousarray(array, dtype=self.input_types.get(name, array.dtype)))
        for name in names:
            binding.bind_output(name, self.device if name in on_device else "cpu")
        self.session.run_with_iobinding(binding, options)
        values = binding.get_outputs()
        return [DeviceTensor(v) if n in on_device else v.numpy() for n, v in zip(names, values, strict=True)]


PACK_ALIGN = 256  # bytes: where each tensor packed into a shared buffer starts (as cudaMalloc aligns)


def _float32(array: np.ndarray) -> np.ndarray:
    """A host output as the runtime reads it: float16 widened to float32, anything else as is."""
    return array.astype(np.float32) if array.dtype == np.float16 else array


def _nbytes(shape: tuple, dtype: Any) -> int:
    return int(np.prod(shape)) * np.dtype(dtype).itemsize


def _pack_layout(names: Collection[str], shapes: Mapping[str, tuple],
                 types: Mapping[str, Any]) -> tuple[dict[str, int], int]:
    """Byte offsets of `names` packed one after another into one buffer, and its size."""
    offsets, size = {}, 0
    for name in names:
        offsets[name] = size
        size += -(-_nbytes(shapes[name], types[name]) // PACK_ALIGN) * PACK_ALIGN
    return offsets, size


class FixedBinding:
    """A fixed-shape graph run again and again on the same buffers, as CUDA graphs need.

    Every input and output lives in an OrtValue allocated once on the session's device; inputs
    are updated in place between runs, outputs read after. Each pair in `swap` (input name ->
    output name, e.g. the KV cache) has two buffers that trade places every run: what run n
    writes, run n + 1 reads, with no copy. So there are two bindings, and on a CUDA-graph
    session each is captured once (graph ids `first_graph_id` and the next) and then replayed.

    The small inputs named in `packed_inputs` share one device buffer, as do the outputs named in
    `packed_outputs` (each bound at its own offset): `set_many` copies all those inputs in with
    one transfer and `get_many` all those outputs out with one, instead of one each (a
    decoder step on a GPU: every transfer waits for the device). Names the graph lacks are left out.
    """

    def __init__(self, graph: GraphSession, swap: Mapping[str, str], packed_inputs: Collection[str] = (),
                 packed_outputs: Collection[str] = (), first_graph_id: int = 1) -> None:
        self.graph = graph
        self.first_graph_id = first_graph_id
        session, device = graph.session, graph.device
        inputs = {i.name: i for i in session.get_inputs()}
        outputs = {o.name: o for o in session.get_outputs()}
        for meta in (*inputs.values(), *outputs.values()):
            if not all(isinstance(d, int) and d > 0 for d in meta.shape):
                raise PackageError(f"{graph.path.name}: {meta.name} has no fixed shape ({meta.shape})")
        self.types = {n: _DTYPES.get(m.type, np.float32) for n, m in {**inputs, **outputs}.items()}
        self.shapes = {n: tuple(m.shape) for n, m in {**inputs, **outputs}.items()}
        packed_in = [n for n in packed_inputs if n in inputs and n not in swap]
        packed_out = [n for n in packed_outputs if n in outputs and n not in swap.values()]
        self._in_offsets, in_size = _pack_layout(packed_in, self.shapes, self.types)
        self._out_offsets, out_size = _pack_layout(packed_out, self.shapes, self.types)
        self._staging = np.zeros(in_size, np.uint8)

        def buffer(name: str) -> Any:
            return ort.OrtValue.ortvalue_from_numpy(np.zeros(self.shapes[name], self.types[name]), device, 0)

        def packed(size: int) -> Any:
            return ort.OrtValue.ortvalue_from_numpy(np.zeros(max(size, 1), np.uint8), device, 0)

        self._packed_in, self._packed_out = packed(in_size), packed(out_size)
        self._values = {name: buffer(name) for name in inputs if name not in swap and name not in packed_in}
        self._values |= {name: buffer(name) for name in outputs if name not in swap.values() and name not in packed_out}
        self._pairs = {name: (buffer(name), buffer(name)) for name in swap}
        self._bindings = []
        for turn in (0, 1) if swap else (0,):
            binding = session.io_binding()
            for name in inputs:
                if name in packed_in:
                    binding.bind_input(name, device, 0, self.types[name], list(self.shapes[name]),
                                       self._packed_in.data_ptr() + self._in_offsets[name])
                    continue
                value = self._pairs[name][turn] if name in swap else self._values[name]
                binding.bind_ortvalue_input(name, value)
            for name in outputs:
                if name in packed_out:
                    binding.bind_output(name, device, 0, self.types[name], list(self.shapes[name]),
                                        self._packed_out.data_ptr() + self._out_offsets[name])
                    continue
                pair = next((i for i, o in swap.items() if o == name), None)
                value = self._pairs[pair][1 - turn] if pair else self._values[name]
                binding.bind_ortvalue_output(name, value)
            self._bindings.append(binding)
        self._turn = 0

    def set(self, name: str, array: np.ndarray) -> None:
        """Copy `array` into input `name` (for a swapped input: the buffer the next run reads)."""
        if name in self._in_offsets:
            self.set_many({name: array})
            return
        value = self._pairs[name][self._turn] if name in self._pairs else self._values[name]
        value.update_inplace(np.ascontiguousarray(array, dtype=self.types[name]).reshape(self.shapes[name]))

    def set_many(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Copy packed inputs in (one transfer for all of them); others one by one."""
        packed = False
        for name, array in arrays.items():
            if name not in self._in_offsets:
                self.set(name, array)
                continue
            data = np.ascontiguousarray(array, dtype=self.types[name]).reshape(self.shapes[name])
            start = self._in_offsets[name]
            self._staging[start: start + data.nbytes] = data.reshape(-1).view(np.uint8)
            packed = True
        if packed:
            self._packed_in.update_inplace(self._staging)

    def run(self) -> None:
        self.graph.run_bound(self._bindings[self._turn], self.first_graph_id + self._turn)
        self._turn = (self._turn + 1) % len(self._bindings)

    def outputs(self) -> dict[str, np.ndarray]:
        """Host copies of every output of the last run (float outputs as float32)."""
        return {name: self.get(name) for name in self.graph.output_names}

    def get(self, name: str) -> np.ndarray:
        """A host copy of output `name` of the last run, as float32 for float outputs."""
        if name in self._out_offsets:
            return self.get_many([name])[name]
        return _float32(self._values[name].numpy())

    def get_many(self, names: Collection[str]) -> dict[str, np.ndarray]:
        """Host copies of outputs `names` (the packed ones in one transfer), float as float32."""
        whole = self._packed_out.numpy() if any(n in self._out_offsets for n in names) else None
        result = {}
        for name in names:
            if name not in self._out_offsets:
                result[name] = self.get(name)
                continue
            start = self._out_offsets[name]
            size = _nbytes(self.shapes[name], self.types[name])
            array = whole[start: start + size].view(self.types[name]).reshape(self.shapes[name])
            result[name] = _float32(array.copy())  # on the CPU numpy() may be a view of the live buffer
        return result


def _create_session(path: Path, device: str, threads: int | None, cuda_graph: bool = False,
                    fixed_dims: Mapping[str, int] | None = None) -> Any:
    options = ort.SessionOptions()
    for name, size in (fixed_dims or {}).items():
        # Every shape is then known at load: ONNX Runtime folds the shape arithmetic away.
        options.add_free_dimension_override_by_name(name, size)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Idle ORT workers must not spin: numpy preprocessing runs between model runs on the same cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    if device == "cuda":
        preload_cuda_libraries()
        # The arena grows in powers of two, not by exactly each request: the decoder's KV
        # cache grows every token (H200, same run: paper decoder 4.6 -> 4.2 ms a token, tiny
        # 1.9 -> 1.3 ms).
        cuda_options = {"device_id": 0, "arena_extend_strategy": "kNextPowerOfTwo",
                        "cudnn_conv_algo_search": "HEURISTIC"}
        if cuda_graph:
            cuda_options["enable_cuda_graph"] = "1"
        providers: list[Any] = [(CUDA, cuda_options), CPU]
        with _LOG_LOCK:  # the CUDA loader prints C++ errors; our notice says it instead
            ort.set_default_logger_severity(4)
            try:
                session = ort.InferenceSession(str(path), options, providers=providers)
            finally:
                ort.set_default_logger_severity(3)
        if CUDA not in session.get_providers():
            raise InferenceError("the CUDA provider could not be started (CUDA or cuDNN libraries missing, or no GPU)")
        return session
    return ort.InferenceSession(str(path), options, providers=[CPU])


_preloaded: list[bool] = []


def preload_cuda_libraries() -> None:
    """Load CUDA and cuDNN from pip's nvidia-* packages where the system has none (ONNX Runtime
    >= 1.21; a no-op elsewhere). Once per process; what it prints goes to the log, not stdout."""
    preload = getattr(ort, "preload_dlls", None)
    with _LOG_LOCK:
        if _preloaded or preload is None:
            return
        _preloaded.append(True)
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                preload()
        except Exception as exc:  # noqa: BLE001 - the session's own error says what is missing
            log.info("preloading CUDA libraries failed: %s", _short(exc))
        if printed.getvalue().strip():
            log.info("preloading CUDA libraries: %s", _short(printed.getvalue()))


def is_out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in _OOM_MARKERS)


@dataclass
class OrtModel:
    """The vision and decoder sessions of one package on one device, plus fallback notices."""

    package: ModelPackage
    vision: GraphSession
    decoder: GraphSession
    device: str
    notices: list[str] = field(default_factory=list)
    threads: int | None = None
    static_decoder: GraphSession | None = None
    """The fixed-shape decoder step for CUDA graphs (CUDA only, when the package has one)."""
    fixed_vision: GraphSession | None = None
    """The fp16 vision graph with its batch fixed at one scan, for a CUDA graph (CUDA only)."""

    @classmethod
    def open(cls, package: ModelPackage, device: str = "auto", threads: int | None = None) -> OrtModel:
        """Create sessions on `device` ("auto"|"cuda"|"cpu"), falling back to CPU with a notice."""
        if device not in DEVICES:
            raise InferenceError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
        notices: list[str] = []
        if device in ("auto", "cuda"):
            if not cuda_listed():
                notices.append("This ONNX Runtime has no CUDA provider; running on CPU.")
            else:
                try:
                    model = cls(package, *_pair(package, "cuda", threads), "cuda", notices, threads)
                    model.static_decoder = _static_decoder(package, threads)
                    model.fixed_vision = _fixed_vision(package, threads)
                    return model
                except Exception as exc:  # any CUDA start-up failure -> CPU
                    if device == "cuda":
                        notices.append(f"CUDA could not be used, running on CPU: {_short(exc).rstrip('.')}.")
                    else:
                        notices.append(f"No usable GPU, running on CPU: {_short(exc).rstrip('.')}.")
        for notice in notices:
            log.warning("%s", notice)
        return cls(package, *_pair(package, "cpu", threads), "cpu", notices, threads)

    def fall_back_to_cpu(self, reason: str) -> None:
        """Replace the CUDA sessions by CPU ones after a run-time failure; records a notice."""
        notice = f"The GPU failed during a run ({reason}); switched to CPU."
        log.warning("%s", notice)
        self.vision, self.decoder = _pair(self.package, "cpu", self.threads)
        self.static_decoder = self.fixed_vision = None
        self.device = "cpu"
        self.notices.append(notice)

    def drop_fixed_vision(self, reason: str) -> None:
        """Run the vision graph the ordinary way from now on (its CUDA graph failed)."""
        log.warning("the one-scan vision graph failed (%s); using the ordinary vision session", reason)
        self.fixed_vision = None

    def drop_static_decoder(self, reason: str) -> None:
        """Decode with the dynamic decoder graph from now on (the static one failed)."""
        log.warning("the fixed-shape decoder failed (%s); using the dynamic decoder graph", reason)
        self.static_decoder = None

    def terminate(self) -> None:
        self.vision.terminate()
        self.decoder.terminate()
        for graph in (self.static_decoder, self.fixed_vision):
            if graph is not None:
                graph.terminate()


def _pair(package: ModelPackage, device: str, threads: int | None) -> tuple[GraphSession, GraphSession]:
    precision = "fp16" if device == "cuda" else "fp32"
    vision = GraphSession(package.graph_path("vision", precision), device, threads)
    decoder = GraphSession(package.graph_path("decoder", precision), device, threads)
    return vision, decoder


def _fixed_vision(package: ModelPackage, threads: int | None) -> GraphSession | None:
    """A second session of the fp16 vision graph with its batch fixed at 1, so that ONNX
    Runtime folds its shape arithmetic and can capture one scan as a CUDA graph (without the
    capture where CUDA lacks an operator); None where it cannot be opened or
    MEDMPT_CUDA_GRAPHS=0."""
    if os.environ.get("MEDMPT_CUDA_GRAPHS", "").strip() == "0":
        return None
    for cuda_graph in (True, False):  # fixed shapes alone still fold the shape arithmetic
        try:
            return GraphSession(package.graph_path("vision", "fp16"), "cuda", threads,
                                cuda_graph=cuda_graph, fixed_dims={"batch": 1})
        except Exception as exc:  # noqa: BLE001 - the ordinary vision session still works
            log.info("one-scan vision graph (CUDA graph %s) not opened: %s", "on" if cuda_graph else "off", _short(exc))
    return None


def _static_decoder(package: ModelPackage, threads: int | None) -> GraphSession | None:
    """The package's fixed-shape fp16 decoder on CUDA, captured as CUDA graphs where ONNX
    Runtime can; None when the package has none, it cannot be opened (the dynamic decoder
    graph then decodes, as before) or MEDMPT_CUDA_GRAPHS=0 (to compare the two)."""
    if os.environ.get("MEDMPT_CUDA_GRAPHS", "").strip() == "0":
        log.info("CUDA graphs turned off (MEDMPT_CUDA_GRAPHS=0)")
        return None
    if "fp16" not in package.manifest["graphs"].get("decoder_static", {}):
        return None
    path = package.graph_path("decoder_static", "fp16")
    for cuda_graph in (True, False):
        try:
            return GraphSession(path, "cuda", threads, cuda_graph=cuda_graph)
        except Exception as exc:  # noqa: BLE001 - the dynamic decoder still works
            log.info("fixed-shape decoder (CUDA graphs %s) not opened: %s", "on" if cuda_graph else "off", _short(exc))
    return None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."
