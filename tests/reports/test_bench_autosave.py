"""`medmpt bench autosave` prints its table and ratio (figures only, nothing asserted about speed)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from app.reports import bench_autosave


def test_bench_prints_both_modes_and_the_ratio(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    bench_autosave.add_arguments(parser)
    assert bench_autosave.run(parser.parse_args(["--saves", "3", "--chars", "50", "--dir", str(tmp_path)])) == 0
    out = capsys.readouterr().out
    assert "WAL + synchronous=FULL (used)" in out and "WAL + synchronous=NORMAL" in out
    assert "ratio FULL/NORMAL (median):" in out
    assert list(tmp_path.iterdir()) == []  # scratch databases are removed
