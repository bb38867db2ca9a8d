"""Where an ONNX Runtime decoder step and vision run spend their time (GPU profiling aid).

    PYTHONPATH=. python3 scripts/profile_ort_gpu.py paper|tiny cuda|cpu

Exports a random package of the config, then times the decoder step over 120 beam-2 tokens in
variants (arena strategy, IO binding, fp32 graph, the KV cache left on the device without beam
reordering as a lower bound) and prints ORT's per-operator profile of the decoder and the
vision graph. Prints only; the numbers in docs/measurements/h200-2026-11-26 came from it
(with the arena strategy of that day: kSameAsRequested in "current").
"""

import collections
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

import inference.ort_runtime as rt
from inference.decoder_step import STATIC_CACHE_SWAP, KVCacheStep, StaticKVCacheStep
from inference.generation import beam_search, log_softmax
from inference.package import load_package
from models.bench_infer import _drain, build_bench_package

config, device = sys.argv[1], sys.argv[2]
tmp = Path(tempfile.mkdtemp())
t0 = time.time()
model, pkg_dir, bos = build_bench_package(config, 0, tmp, fp16=True)
package = load_package(pkg_dir)
print(f"package in {time.time() - t0:.1f}s", flush=True)
pixels = np.random.default_rng(0).uniform(-1, 1, (1, 32, 3, 224, 224)).astype(np.float32)
EP = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"


def create(path, arena="kSameAsRequested", profile=None, extra=None):
    rt.preload_cuda_libraries()
    o = ort.SessionOptions()
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    o.log_severity_level = 3
    if profile:
        o.enable_profiling = True
        o.profile_file_prefix = str(tmp / profile)
    if device != "cuda":
        return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])
    opts = {"device_id": 0, "arena_extend_strategy": arena, "cudnn_conv_algo_search": "HEURISTIC"}
    opts.update(extra or {})
    return ort.InferenceSession(str(path), o, providers=[(EP, opts), "CPUExecutionProvider"])


vision = rt.GraphSession(package.graph_path("vision", "fp16"), device)
V = vision.run({"pixel_values": pixels})


def variant(name, precision="fp16", binding=True, arena="kSameAsRequested", extra=None, steps=120):
    rt._create_session = lambda path, dev, threads, *rest: create(path, arena, extra=extra)
    try:
        dec = rt.GraphSession(package.graph_path("decoder", precision), device)
    except Exception as exc:
        print(f"{name}: cannot open: {exc}"[:300])
        return
    dec.use_binding = binding and device == "cuda"
    inside = []
    orig = dec.run

    def timed(*a, **k):
        t = time.perf_counter()
        r = orig(*a, **k)
        inside.append(time.perf_counter() - t)
        return r

    dec.run = timed
    step = KVCacheStep(dec, V["cross_keys"], V["cross_values"])
    _drain(beam_search(step, bos, -1, 2, 5))
    inside.clear()
    t = time.perf_counter()
    _drain(beam_search(step, bos, -1, 2, steps))
    total = time.perf_counter() - t
    print(
        f"{name:<44} {1000 * total / steps:7.2f} ms/token, {1000 * sum(inside) / steps:7.2f} in decoder.run",
        flush=True,
    )


print(f"decoder variants, {config}, beam 2, 120 steps:")
variant("fp16, IO binding, kSameAsRequested (before)")
variant("arena kNextPowerOfTwo (now the default)", arena="kNextPowerOfTwo")
variant("no IO binding", binding=False)
variant("fp32 graph", precision="fp32")
variant("fp32 graph, kNextPowerOfTwo", precision="fp32", arena="kNextPowerOfTwo")
variant("cuda graph off, tf32 on", extra={"use_tf32": "1"})

# Host-side work per step
logits = np.random.default_rng(1).normal(size=(2, model.config.vocab_size)).astype(np.float32)
t = time.perf_counter()
for _ in range(100):
    log_softmax(logits)
print(f"log_softmax float64 on (2, {logits.shape[1]}): {10 * (time.perf_counter() - t):.3f} ms")


# Lower bound: cache stays on the device (no reorder), only logits come back.
def resident(precision, arena, steps=120, profile=None):
    sess = create(package.graph_path("decoder", precision), arena, profile=profile)
    types = {i.name: i.type for i in sess.get_inputs()}
    dt = np.float16 if types["past_keys"] == "tensor(float16)" else np.float32
    L, _, H, S, dh = V["cross_keys"].shape
    ck = ort.OrtValue.ortvalue_from_numpy(
        np.repeat(V["cross_keys"], 2, 1).astype(dt), device if device == "cuda" else "cpu", 0
    )
    cv = ort.OrtValue.ortvalue_from_numpy(
        np.repeat(V["cross_values"], 2, 1).astype(dt), device if device == "cuda" else "cpu", 0
    )
    past = [
        ort.OrtValue.ortvalue_from_numpy(
            np.zeros((L, 2, H, 0, dh), dt), device if device == "cuda" else "cpu", 0
        )
    ] * 2
    ids = np.full((2, 1), bos, np.int64)
    times = []
    for _i in range(steps):
        t = time.perf_counter()
        b = sess.io_binding()
        b.bind_cpu_input("input_ids", ids)
        b.bind_ortvalue_input("past_keys", past[0])
        b.bind_ortvalue_input("past_values", past[1])
        b.bind_ortvalue_input("cross_keys", ck)
        b.bind_ortvalue_input("cross_values", cv)
        b.bind_output("logits", "cpu")
        for n in ("present_keys", "present_values", "cross_attention"):
            b.bind_output(n, device if device == "cuda" else "cpu")
        sess.run_with_iobinding(b)
        outs = b.get_outputs()
        logits = outs[0].numpy()
        past = [outs[1], outs[2]]
        ids = np.argmax(logits[:, -1], -1)[:, None].astype(np.int64)
        times.append(time.perf_counter() - t)
    print(
        f"resident cache ({precision}, {arena}): median {1000 * statistics.median(times):.2f} ms/step, "
        f"last {1000 * times[-1]:.2f}",
        flush=True,
    )
    return sess


resident("fp16", "kSameAsRequested")
resident("fp16", "kNextPowerOfTwo")
sess = resident("fp16", "kNextPowerOfTwo", steps=30, profile="dec")


def summarise(sess, label, top=14):
    path = sess.end_profiling()
    events = json.load(open(path))
    by = collections.defaultdict(float)
    count = collections.Counter()
    prov = collections.Counter()
    runs = [e for e in events if e.get("name") == "model_run"]
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            op = e["args"].get("op_name", "?")
            p = e["args"].get("provider", "?")
            by[(op, p)] += e["dur"]
            count[(op, p)] += 1
            prov[p] += e["dur"]
    n = max(len(runs), 1)
    print(
        f"{label}: {n} runs, model_run median {statistics.median([e['dur'] for e in runs]) / 1000:.2f} ms; "
        f"kernel time per run by provider: "
        + ", ".join(f"{p} {v / n / 1000:.2f} ms" for p, v in prov.items())
    )
    for (op, p), us in sorted(by.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {op:<28} {p:<22} {us / n / 1000:7.3f} ms/run  {count[(op, p)] // n:4d} nodes")


summarise(sess, "decoder fp16 resident, profiled")

# The fixed-shape decoder without CUDA graphs, profiled: its kernel time per step is about what a
# replayed CUDA graph of it costs (the runtime's own timing with graphs is bench infer's "(c)").
rt._create_session = lambda path, dev, threads, *rest: create(
    path, "kNextPowerOfTwo", profile="static"
)
static = rt.GraphSession(package.graph_path("decoder_static", "fp16"), device)
fixed = rt.FixedBinding(static, STATIC_CACHE_SWAP)
step = StaticKVCacheStep(fixed, V["cross_keys"], V["cross_values"])
t = time.perf_counter()
_drain(beam_search(step, bos, -1, 2, 30))
total = time.perf_counter() - t
print(
    f"fixed-shape decoder, no CUDA graph: {1000 * total / 30:.2f} ms/token over 30 tokens, profiled"
)
summarise(static.session, "decoder_static fp16, profiled")
vs = create(package.graph_path("vision", "fp16"), "kNextPowerOfTwo", profile="vis")
for _ in range(6):
    vs.run(None, {"pixel_values": pixels})
summarise(vs, "vision fp16, profiled", top=16)
