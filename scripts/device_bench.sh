#!/usr/bin/env bash
# The GPU figures of the README (bench infer, bench report, the CUDA test) on the lent GPU
# machine, in one command; see ../shared/device/README.md for how onnxruntime-gpu gets there.
#
#   bash scripts/device_bench.sh CT_FOLDER OUT_DIR
#
# Runs from the repository root with onnxruntime-gpu importable. The GPU machine's image has
# torch, transformers, tokenizers, onnx, numpy, scipy, pillow and fonttools; the command line
# also needs pydicom, platformdirs, fpdf2 and defusedxml. `scripts/gpu_payload.sh` packs them,
# ONNX Runtime and the CT series into two transfers; its header gives the two commands.
# Each step has its own time limit and writes OUT_DIR/<step>.txt as it goes, so a step that
# fails or runs out of time leaves the others' figures; the steps the issues' targets name run
# first. ONLY="infer-paper report-paper" runs just the steps named. Asserts nothing.
# Steps: graph-variants, infer-paper, report-paper, infer-paper-cls, report-paper-cls, cuda-test,
# report-paper-dynamic, report-tiny, infer-tiny, torch-vision, profile.
# Last run: 2026-11-27, 203 s on an H200 (docs/measurements/h200-2026-11-27).
set -u
data=${1:?CT folder}
out=${2:?output folder}
py=${PYTHON:-python3}
device=${DEVICE:-cuda}      # DEVICE=cpu BIG=tiny REPEATS=1: a dry run of this script anywhere
big=${BIG:-paper}
repeats=${REPEATS:-10}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 MEDMPT_DATA_DIR=/tmp/medmpt-home MEDMPT_LOG_DIR=/tmp/medmpt-home
# CUDA and cuDNN from the nvidia-* pip packages beside torch, for processes that never import it.
site=$("$py" -c 'import site; print(site.getsitepackages()[0])')
libs=$(find "$site/nvidia" -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:-}"

step() {  # step NAME SECONDS COMMAND...; ONLY="infer-paper report-paper" runs just those steps
  local name=$1 limit=$2
  shift 2
  case " ${ONLY:-$name} " in *" $name "*) ;; *) return 0 ;; esac
  echo "=== $name ($(date +%T))"
  timeout "$limit" "$@" > "$out/$name.txt" 2>&1
  local rc=$?
  cat "$out/$name.txt"
  echo "=== $name: exit $rc"
}

{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  nproc
  "$py" - <<'EOF'
import onnxruntime as ort
print("onnxruntime", ort.__version__, ort.get_available_providers())
from pathlib import Path
from inference.ort_runtime import GraphSession
import os
session = GraphSession(Path("models/packages/medmpt-tiny-phantom/vision.fp16.onnx"), os.environ.get("DEVICE", "cuda"))
print("bundled fp16 vision graph on", session.session.get_providers())
import torch
print("torch", torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA")
EOF
} > "$out/env.txt" 2>&1
cat "$out/env.txt"
# Stop here, not minutes later, when the GPU is not usable: every figure below would be a CPU one.
if [ "$device" = cuda ] && ! grep -q "CUDAExecutionProvider" <(grep "bundled fp16 vision graph on" "$out/env.txt"); then
  echo "CUDA provider not usable (see env.txt): stopping"
  exit 1
fi

# The vision graph laid out four ways and the fixed-shape decoder two ways, side by side.
step graph-variants 240 env PYTHONPATH="${PYTHONPATH:-.}" "$py" scripts/graph_variants.py "$big" "$device" 20
rm -rf /tmp/paper-package
step infer-$big 200 "$py" -m app.cli bench infer --config "$big" --device "$device" --repeats "$repeats" \
  --keep-package /tmp/paper-package
step report-$big 100 "$py" -m app.cli bench report "$data" --device "$device" --model /tmp/paper-package --runs 5
# The same with the last block's CLS attention as the in-plane heatmap (every block's attention fused).
rm -rf /tmp/paper-cls-package
step infer-$big-cls 200 "$py" -m app.cli bench infer --config "$big" --device "$device" --repeats "$repeats" \
  --patch-relevance cls-attention --keep-package /tmp/paper-cls-package
step report-$big-cls 100 "$py" -m app.cli bench report "$data" --device "$device" --model /tmp/paper-cls-package --runs 5
step cuda-test 100 "$py" -m pytest -c /dev/null --rootdir . --import-mode=importlib -p no:cacheprovider -q -rs \
  tests/inference/test_cuda.py tests/models/test_parity.py
# The same without CUDA graphs (the dynamic KV-cache decoder, the ordinary vision session), side by side.
MEDMPT_CUDA_GRAPHS=0 step report-$big-dynamic 100 "$py" -m app.cli bench report "$data" --device "$device" \
  --model /tmp/paper-package --runs 5
step report-tiny 60 "$py" -m app.cli bench report "$data" --device "$device" --runs 5
step infer-tiny 60 "$py" -m app.cli bench infer --config tiny --device "$device" --repeats "$repeats"
# For reference: what the GPU does with the same vision work in torch, fp32 and fp16 autocast.
step torch-vision 60 "$py" - "$big" "$device" "$repeats" <<'EOF2'
import statistics, sys, time
import torch
from models.medmpt.model import build_model
from models.medmpt.config import get_config
config, device, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = build_model(get_config(config), seed=0).eval().to(device)
x = torch.rand(1, 32, 3, 224, 224, device=device)
for name, dtype in (("fp32", None), ("fp16 autocast", torch.float16)):
    times = []
    for i in range(repeats + 2):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.no_grad(), torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
            model.encode(x)
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            times.append(1000 * (time.perf_counter() - start))
    print(f"torch {config} vision {name}: median {statistics.median(times):.2f} ms of {repeats}")
EOF2
# Where the time goes, per operator (decoder variants and ORT's profile of both graphs).
step profile 120 env PYTHONPATH="${PYTHONPATH:-.}" "$py" scripts/profile_ort_gpu.py "$big" "$device"
