#!/usr/bin/env bash
# Set up (idempotent) and launch the workstation on the bundled demo study with the bundled model.
# It drafts the report at once. Headless (no display): bash scripts/workstation.sh --screenshot workstation.png
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [[ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" && " $* " != *" --screenshot "* && " $* " != *" --self-test "* ]]; then
  echo "workstation: no display found; running under Xvfb (use --screenshot PNG for a picture)" >&2
  exec xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/medmpt-workstation --demo --draft "$@"
fi
exec .venv/bin/medmpt-workstation --demo --draft "$@"
