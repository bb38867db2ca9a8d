#!/usr/bin/env bash
# Idempotent set-up on Debian/Ubuntu with Python 3.11: apt packages, .venv, the project.
#   bash scripts/setup.sh            runtime only (the workstation)
#   bash scripts/setup.sh --dev      + test tools and the torch-side extra (torch==2.13.0, CPU)
set -euo pipefail
cd "$(dirname "$0")/.."

want_dev=0
[[ "${1:-}" == "--dev" ]] && want_dev=1

# Qt (xcb/offscreen), VTK (OpenGL/OSMesa), dicom3tools (dciodvfy), Xvfb for a virtual display,
# Noto fonts for Arabic, Hebrew and Indic names in the PDF export.
APT_PACKAGES=(python3.11 python3.11-venv libegl1 libgl1 libglx-mesa0 libosmesa6 libxkbcommon0
  libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libglib2.0-0 libxrender1 libxcb-cursor0
  libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-image0
  libxcb-render-util0 libxcb-xkb1 libxi6 libxt6 xvfb xauth fonts-noto-core)
# Tests: dciodvfy, Ghostscript to read exported PDFs back, a CJK fallback font for the PDF export.
[[ $want_dev == 1 ]] && APT_PACKAGES+=(dicom3tools ghostscript fonts-droid-fallback)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if [[ "$pkg" == python3.11* ]] && command -v python3.11 >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing apt packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) != 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3.11}
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $PY"
  "$PY" -m venv .venv
fi

extras=""
[[ $want_dev == 1 ]] && extras="[dev,train]"
stamp=".venv/.medmpt-installed${extras:+-dev}"
fingerprint=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$fingerprint" ]]; then
  echo "setup: installing the project${extras:+ with $extras} into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  # torch is pinned (==2.13.0, CPU build) by the train extra; install it first so nothing pulls a CUDA build.
  [[ $want_dev == 1 ]] && .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".${extras}"
  echo "$fingerprint" > "$stamp"
fi
