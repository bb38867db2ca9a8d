"""`medmpt bench infer`: the published torch algorithm vs our ONNX Runtime path, side by side.

Same random weights in one process. (a) torch, no KV cache: the whole prefix is recomputed at
every step, beam 2. (b) the `inference` package: ORT vision graph, then its beam search over
the KV-cache decoder-step graph (fp16 + IO binding on CUDA, fp32 on CPU). Both decode exactly
`--steps` tokens (EOS is ignored, as the reference did) so the work is comparable; vision
runs, and then decodes, alternate between the paths so load from other processes (or a GPU
changing speed) hits all alike. On CUDA, (c) is the fixed-shape decoder replayed as CUDA
graphs: its search on the graph's best log-probabilities with a step's small tensors copied in
and out at once and, side by side, with one copy per tensor and with the whole logits
normalised on the host. Prints figures and ratios; asserts nothing. Must not be imported by
app, ui or inference.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.export.package import PackageInfo, write_package
from models.medmpt.config import CONFIGS, RELEVANCE_METHODS, MedMPTConfig, get_config
from models.medmpt.generate import beam_full_prefix
from models.medmpt.model import MedMPTReportModel, build_model
from models.medmpt.tokenizer import BUILTIN_CORPUS, from_vocab_file, train_wordpiece

NO_EOS = -1
# Dense fp16 tensor-core peaks (TFLOP/s) by device-name fragment; pass --peak-tflops otherwise.
PEAK_TFLOPS = {"H200": 989.0, "H100 SXM": 989.0, "H100 PCIe": 756.0, "H100": 756.0, "A100": 312.0,
               "L40S": 362.0, "L4": 121.0, "A10": 125.0, "RTX 4090": 165.0, "V100": 125.0, "T4": 65.0}


@dataclass
class PathTimes:
    vision_ms: float
    decode_ms: float
    steps: int
    tokens: list[int]

    @property
    def token_ms(self) -> float:
        return self.decode_ms / max(self.steps, 1)

    @property
    def report_ms(self) -> float:
        return self.vision_ms + self.decode_ms


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", choices=sorted(CONFIGS), default="tiny", help="model sizes")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--steps", type=int, default=120, help="tokens to decode (default 120)")
    parser.add_argument("--beams", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="vision runs to take the median of")
    parser.add_argument("--decode-rounds", type=int, default=3,
                        help="rounds of decodes, each path in turn, to take the median of (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch and ORT")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak for the utilisation line")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patch-relevance", choices=RELEVANCE_METHODS, default="rollout",
                        help="the package's in-plane heatmap (ours, (b) and (c)): attention rollout, or the "
                             "last block's CLS attention with every block's attention fused")
    parser.add_argument("--keep-package", metavar="DIR", type=Path, default=None,
                        help="also keep the exported random-weight package in DIR (new or empty), "
                             "e.g. for `medmpt bench report --model DIR`")


def vision_macs(config: MedMPTConfig) -> int:
    """Multiply-adds of the slice encoder for one 32-slice scan (patch embed + blocks)."""
    d, tokens, patches = config.vision_width, config.grid**2 + 1, config.grid**2
    patch = patches * 3 * config.patch_size**2 * d
    block = tokens * (4 * d * d + 2 * d * config.vision_mlp) + 2 * tokens * tokens * d
    return config.num_slices * (patch + config.vision_depth * block)


def _timed_ms(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return (time.perf_counter() - start) * 1000.0, value


def _tokenizer(config: MedMPTConfig, folder: Path):
    if config.vocab_size <= 2000:
        return train_wordpiece(BUILTIN_CORPUS, vocab_size=config.vocab_size)
    tokens = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += [f"tok{i}" for i in range(config.vocab_size - len(tokens))]
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return from_vocab_file(vocab)


def build_bench_package(config_name: str, seed: int, folder: Path, fp16: bool,
                        patch_relevance: str = "rollout") -> tuple[MedMPTReportModel, Path, int]:
    """Random model of `config_name`, exported to a package in `folder`; returns model, path, BOS."""
    probe = get_config(config_name)
    tokenizer = _tokenizer(probe, folder)
    model = build_model(get_config(config_name, vocab_size=tokenizer.get_vocab_size(),
                                   patch_relevance=patch_relevance), seed=seed)
    info = PackageInfo(name=f"bench-{config_name}", version="0.0.0", display_name="benchmark",
                       label="random weights, for benchmarks only", intended_use="benchmark",
                       licence="n/a", provenance=f"medmpt bench infer, seed {seed}")
    package = write_package(model, tokenizer, folder / "package", info, fp16=fp16)
    return model, package, int(tokenizer.token_to_id("[CLS]"))


@dataclass
class BenchPath:
    """One path under test: a vision run and a decode run (returns tokens, steps)."""

    vision: Callable[[], object]
    decode: Callable[[int], tuple[list[int], int]]
    device: str
    # The vision run with the pixels already on the device (IO binding); None where not apart.
    vision_resident: Callable[[], object] | None = None
    # (c) decoding with the fixed-shape decoder graph (CUDA graphs); None where there is none.
    decode_static: Callable[..., tuple[list[int], int]] | None = None
    static_note: str = ""
    # (c) the vision graph with its batch fixed at one scan (a CUDA graph): with and without
    # copying the pixels in first; None where there is none.
    vision_fixed: tuple[Callable[[], object], Callable[[], object]] | None = None
    vision_fixed_note: str = ""
    vision_fixed_ms: float | None = None  # its median with the pixel copy, once measured
    # (c) whether a search of (beams, steps) fits the fixed-shape decoder; the ms that n
    # replays of its step alone take (no copies out, no search).
    static_fits: Callable[[int, int], bool] = lambda beams, steps: False
    static_replay: Callable[[int], float] | None = None


def torch_path(model: MedMPTReportModel, pixels: np.ndarray, bos: int, args) -> BenchPath:
    """(a) the published algorithm: torch vision, then full-prefix beam search without cache."""
    model = model.to(args.device)
    x = torch.from_numpy(pixels).to(args.device)
    memory = {}

    def vision():
        with torch.no_grad():
            memory["memory"] = model.encode(x)["memory"]
        _sync(args.device)

    def decode(steps: int):
        out = beam_full_prefix(model, memory["memory"], bos, NO_EOS, args.beams, steps)
        _sync(args.device)
        return out

    return BenchPath(vision, decode, args.device)


def ort_path(package_dir: Path, pixels: np.ndarray, args) -> BenchPath:
    """(b) our runtime: ORT vision graph, then the inference package's KV-cache beam search."""
    from inference.decoder_step import (
        STATIC_CACHE_SWAP,
        STATIC_PACKED_INPUTS,
        STATIC_PACKED_OUTPUTS,
        KVCacheStep,
        StaticKVCacheStep,
    )
    from inference.generation import beam_search
    from inference.ort_runtime import FixedBinding, OrtModel
    from inference.package import load_package

    package = load_package(package_dir)
    runtime = OrtModel.open(package, device=args.device, threads=args.threads)
    bos = int(package.manifest["tokens"]["bos"])
    cross = {}

    def vision():
        cross.update(runtime.vision.run({"pixel_values": pixels}))

    def decode(steps: int):
        step = KVCacheStep(runtime.decoder, cross["cross_keys"], cross["cross_values"])
        result = _drain(beam_search(step, bos, NO_EOS, args.beams, steps))
        return list(result.tokens), result.steps

    resident = None
    if runtime.vision.use_binding:  # CUDA: time the graph without the host-to-device copy too
        pinned = pixels.copy()
        runtime.vision.keep_on_device("pixel_values", pinned)

        def resident():
            return runtime.vision.run({"pixel_values": pinned})

    decode_static, note = None, "no fixed-shape decoder (CPU, or the package has none)"
    if runtime.static_decoder is not None:
        graph = runtime.static_decoder
        fixed = FixedBinding(graph, STATIC_CACHE_SWAP, STATIC_PACKED_INPUTS, STATIC_PACKED_OUTPUTS)
        # The same graph with one transfer per tensor, as before 2026-11-27 (its own CUDA graphs).
        unpacked = FixedBinding(graph, STATIC_CACHE_SWAP, first_graph_id=3)
        note = f"fixed-shape decoder, CUDA graphs {'on' if graph.cuda_graph else 'off (not available)'}"

        def decode_static(steps: int, device_top: bool = True, packed: bool = True):
            step = StaticKVCacheStep(fixed if packed else unpacked, cross["cross_keys"], cross["cross_values"])
            if not device_top:  # as before 2026-11-27: the logits to the host, normalised there
                step.top_k = 0
            result = _drain(beam_search(step, bos, NO_EOS, args.beams, steps))
            return list(result.tokens), result.steps

    vision_fixed = None
    if runtime.fixed_vision is not None:
        one_scan = FixedBinding(runtime.fixed_vision, {})

        def fixed_with_copy():
            one_scan.set("pixel_values", pixels)
            one_scan.run()
            return one_scan.outputs()

        def fixed_resident():
            one_scan.run()
            return one_scan.outputs()

        vision_fixed = (fixed_with_copy, fixed_resident)
    graph_note = f"CUDA graph {'on' if runtime.fixed_vision is not None and runtime.fixed_vision.cuda_graph else 'off'}"
    bench = BenchPath(vision, decode, runtime.device, resident, decode_static, note, vision_fixed, graph_note)
    if runtime.static_decoder is not None:
        bench.static_fits = lambda beams, steps: StaticKVCacheStep.holds(fixed, beams, steps)

        def replay(count: int) -> float:
            elapsed = 0.0
            for position in range(count):
                fixed.set("position", np.array([position], dtype=np.int64))
                started = time.perf_counter()
                fixed.run()
                elapsed += time.perf_counter() - started
            return elapsed * 1000.0

        bench.static_replay = replay
    return bench


def measure(path: BenchPath, other: BenchPath, args) -> tuple[PathTimes, PathTimes, PathTimes | None]:
    """Vision runs alternate between the paths, and so do the decodes, in `--decode-rounds`
    rounds of (a), (b), then (c) three ways: a GPU or CPU that speeds up or slows down during
    the run (seen on lent GPUs) then moves every path's median alike. (c) is None (the reason
    printed) where there is no fixed-shape decoder or the search does not fit it."""
    times: tuple[list[float], list[float]] = ([], [])
    for index in range(args.repeats + 1):
        for slot, candidate in enumerate((path, other)):
            elapsed, _ = _timed_ms(candidate.vision)
            if index:  # the first round is a warm-up
                times[slot].append(elapsed)
    if other.vision_resident is not None:
        other.vision_resident()  # warm-up
        resident = [_timed_ms(other.vision_resident)[0] for _ in range(args.repeats)]
        print(f"(b) vision with the pixels already on the {other.device.upper()}: "
              f"median {statistics.median(resident):.2f} ms of {args.repeats}")
    if other.vision_fixed is not None:
        medians = []
        for run in other.vision_fixed:
            for _ in range(3):  # warm-up: the first runs, then the capture
                run()
            medians.append(statistics.median(_timed_ms(run)[0] for _ in range(args.repeats)))
        other.vision_fixed_ms = medians[0]
        print(f"(c) vision, batch fixed at one scan ({other.vision_fixed_note}): "
              f"median {medians[0]:.2f} ms ({medians[1]:.2f} ms with the pixels already on the device)")
    decoders: dict[str, Callable[[int], tuple[list[int], int]]] = {"a": path.decode, "b": other.decode}
    static = other.decode_static
    if static is None:
        print(f"(c) {other.static_note}")
    elif not other.static_fits(args.beams, args.steps):
        print(f"(c) not measured: {args.beams} beams and {args.steps} tokens do not fit the fixed-shape decoder")
    else:
        print(f"(c) {other.static_note}")
        decoders["c"] = static
        decoders["c-unpacked"] = lambda steps: static(steps, packed=False)
        decoders["c-host"] = lambda steps: static(steps, device_top=False, packed=False)
    for decode in decoders.values():
        decode(min(8, args.steps))  # warm-up: for (c) each graph's first runs, then its capture
    runs: dict[str, list[tuple[float, tuple[list[int], int]]]] = {name: [] for name in decoders}
    for _ in range(args.decode_rounds):
        for name, decode in decoders.items():
            runs[name].append(_timed_ms(lambda d=decode: d(args.steps)))
    results = {}
    for name, timed in runs.items():
        ms = statistics.median(t for t, _ in timed)
        tokens, steps = timed[-1][1]
        results[name] = PathTimes(0.0, ms, steps, tokens)
    a, b = results["a"], results["b"]
    a.vision_ms, b.vision_ms = statistics.median(times[0]), statistics.median(times[1])
    c = results.get("c")
    if c is not None:
        # (c)'s whole report: the one-scan vision graph where there is one, else (b)'s vision.
        c.vision_ms = other.vision_fixed_ms or 0.0
        unpacked, host = results["c-unpacked"], results["c-host"]
        same = "yes" if host.tokens == c.tokens == unpacked.tokens else "no"
        print(f"(c) a step's small inputs copied in at once and its outputs out at once, the search on each beam's "
              f"best log-probabilities from the graph: {c.token_ms:.2f} ms per token; one copy per tensor: "
              f"{unpacked.token_ms:.2f} ms (ratio {unpacked.token_ms / c.token_ms:.2f}); and the whole logits "
              f"copied to the host and normalised there (as before): {host.token_ms:.2f} ms "
              f"(ratio {host.token_ms / c.token_ms:.2f}); same tokens: {same}")
        if other.static_replay is not None:
            replay = other.static_replay(args.steps) / args.steps
            print(f"(c) of which the graph's replay alone (one input copied in, nothing out): {replay:.2f} ms a step; "
                  f"the rest, {c.token_ms - replay:.2f} ms, is the host's (copies in and out, the search)")
    return a, b, c


def _drain(generator):
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            return stop.value


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _peak(args, device: str) -> tuple[float | None, str]:
    if args.peak_tflops:
        return args.peak_tflops, "--peak-tflops"
    if device == "cuda":
        name = torch.cuda.get_device_name(0)
        for fragment, peak in PEAK_TFLOPS.items():
            if fragment in name:
                return peak, f"table ({name}, dense fp16)"
    return None, "unknown (pass --peak-tflops)"


def report(config: MedMPTConfig, a: PathTimes, b: PathTimes, args, ort_device: str,
           c: PathTimes | None = None) -> None:
    """Print the comparison table, ratios and vision utilisation."""
    print(f"medmpt bench infer: config {config.config_name}, device {args.device} (ORT on {ort_device}), "
          f"beam {args.beams}, {args.steps} steps, threads {args.threads or 'default'}, "
          f"patch relevance {config.patch_relevance}")
    print(f"{'':34}{'(a) torch, no cache':>22}{'(b) ORT, KV cache':>20}{'ratio a/b':>11}")
    rows = [("vision ms per scan", a.vision_ms, b.vision_ms),
            ("decoder ms per token", a.token_ms, b.token_ms),
            ("whole report ms", a.report_ms, b.report_ms)]
    for label, x, y in rows:
        print(f"{label:34}{x:22.1f}{y:20.1f}{x / y:11.2f}")
    print(f"{'decoded steps':34}{a.steps:22d}{b.steps:20d}")
    same = a.tokens == b.tokens
    print(f"same tokens: {'yes' if same else 'no'}")
    if c is not None:
        vision, which = (c.vision_ms, "the one-scan graph") if c.vision_ms else (b.vision_ms, "(b)'s")
        whole = vision + c.decode_ms
        print(f"(c) ORT, fixed-shape decoder: {c.token_ms:.2f} ms per token (b/c {b.token_ms / c.token_ms:.2f}), "
              f"whole report {whole:.1f} ms with {which} vision (a/c {a.report_ms / whole:.2f}); "
              f"same tokens as (b): {'yes' if c.tokens == b.tokens else 'no'}")
    tflop = 2 * vision_macs(config) / 1e12
    peak, source = _peak(args, args.device)
    for name, ms in (("(a)", a.vision_ms), ("(b)", b.vision_ms)):
        achieved = tflop / (ms / 1000.0)
        share = f", {100 * achieved / peak:.1f}% of peak {peak:g} TFLOP/s" if peak else ""
        print(f"vision {name}: {tflop:.3f} TFLOP per scan, {achieved:.3f} TFLOP/s achieved{share}")
    print(f"peak: {source}")


def run(args: argparse.Namespace) -> int:
    if args.steps < 1 or args.beams < 1 or args.repeats < 1 or args.decode_rounds < 1:
        print("medmpt bench infer: error: --steps, --beams, --repeats and --decode-rounds must be at least 1",
              file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("medmpt bench infer: error: --device cuda but torch sees no CUDA GPU", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    kept = args.keep_package
    if kept and kept.exists() and (not kept.is_dir() or any(kept.iterdir())):
        print(f"medmpt bench infer: error: {kept} is not an empty folder", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="medmpt-bench-") as tmp:
        started = time.perf_counter()
        model, package, bos = build_bench_package(args.config, args.seed, Path(tmp), fp16=args.device == "cuda",
                                                  patch_relevance=args.patch_relevance)
        print(f"built and exported the random {args.config} package in {time.perf_counter() - started:.1f} s")
        if kept:
            shutil.copytree(package, kept, dirs_exist_ok=True)
        pixels = rng.uniform(-1, 1, size=(1, model.config.num_slices, 3, 224, 224)).astype(np.float32)
        theirs = torch_path(model, pixels, bos, args)
        ours = ort_path(package, pixels, args)
        a, b, c = measure(theirs, ours, args)
        ort_device = ours.device
    report(model.config, a, b, args, ort_device, c)
    return 0
