#!/usr/bin/env bash
# What the GPU benchmarks need on the lent GPU machine (onnxruntime-gpu, four small wheels, a CT
# series), packed into as few transfers as the device tool allows: two, against nine for the
# wheel in 30 MB parts (../shared/device/README.md). Used on 2026-11-27 (README, "On a GPU").
#
#   bash scripts/gpu_payload.sh build [CT_FOLDER]   once: download, slim, pack, split (~3 min)
#   bash scripts/gpu_payload.sh stage N             put part N (0-based) alone into .gpu/
#
# Slimming: onnxruntime's C library and TensorRT provider are dropped (Python uses neither),
# and the CUDA provider keeps GPU code for sm_90 only (scripts/prune_fatbin.py); xz then packs
# ONNX Runtime, the wheels and the 64-slice series into 78 MB. Each transfer holds 64 MiB
# with the working tree, so the parts are sized to what the tree leaves.
#
# On the GPU machine, part 0 then part 1, each call carrying [".gpu"], back to back:
#   mkdir -p /tmp/pp && cp .gpu/part.0 /tmp/pp/
#   cp .gpu/part.1 /tmp/pp/ && cat /tmp/pp/part.* | xz -d -T0 | tar -x -C /tmp/pp \
#     && PYTHONPATH=/tmp/pp/site:$PWD bash scripts/device_bench.sh /tmp/pp/data/SERIES $OUT/..
set -euo pipefail
root=$(git rev-parse --show-toplevel)
work=${GPU_PAYLOAD_DIR:-$HOME/.cache/medmpt-gpu-payload}
ort_version=${ORT_VERSION:-1.31.1}
extra=(pydicom==3.0.2 platformdirs fpdf2 defusedxml)  # what the CLI imports beyond the machine's image
plat=(--only-binary=:all: --python-version 3.12 --implementation cp
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)

case "${1:-}" in
  build)
    series=${2:-$root/../shared/data/lung-pet-ct-dx-A0001}
    rm -rf "$work/pack" "$work/parts"
    mkdir -p "$work/whl" "$work/pack/site" "$work/pack/data" "$work/parts"
    python3 -m pip download -q --no-deps "${plat[@]}" -d "$work/whl" "onnxruntime-gpu==$ort_version" "${extra[@]}"
    for wheel in "$work"/whl/*.whl; do
      python3 -m zipfile -e "$wheel" "$work/pack/site"
    done
    capi="$work/pack/site/onnxruntime/capi"
    rm -f "$capi"/libonnxruntime.so.* "$capi/libonnxruntime_providers_tensorrt.so"
    python3 "$root/scripts/prune_fatbin.py" "$capi/libonnxruntime_providers_cuda.so" "$capi/cuda.tmp"
    mv "$capi/cuda.tmp" "$capi/libonnxruntime_providers_cuda.so"
    cp -r "$series" "$work/pack/data/"
    tar -C "$work/pack" -cf - site data | xz -9 -T0 > "$work/payload.tar.xz"
    tree=$(cd "$root" && git ls-files -co --exclude-standard -z | xargs -0 cat 2>/dev/null | wc -c)
    part=$(( (64 * 1024 * 1024 - tree) * 9 / 10 ))
    split -b "$part" -d -a 1 "$work/payload.tar.xz" "$work/parts/part."
    ls -la "$work/payload.tar.xz" "$work/parts"
    echo "working tree $((tree / 1000000)) MB; parts of at most $((part / 1000000)) MB"
    ;;
  stage)
    n=${2:?part number}
    grep -qx '/.gpu/' "$root/.git/info/exclude" 2>/dev/null || echo '/.gpu/' >> "$root/.git/info/exclude"
    rm -f "$root"/.gpu/part.*
    mkdir -p "$root/.gpu"
    cp "$work/parts/part.$n" "$root/.gpu/"
    du -sh "$root/.gpu"
    ;;
  *)
    sed -n '2,18p' "$0"
    exit 2
    ;;
esac
