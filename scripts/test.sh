#!/usr/bin/env bash
# Set up (idempotent, with test tools and torch==2.13.0 CPU) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
exec .venv/bin/python -m pytest "$@"
