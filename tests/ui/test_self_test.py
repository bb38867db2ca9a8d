"""`medmpt-workstation --self-test` prints one line per check and fails when one fails."""

from __future__ import annotations

from ui import self_test


def test_self_test_passes_here_and_checks_the_exports(qapp, tmp_path, capsys):
    assert self_test.run_self_test(qapp, tmp_path / "medmpt.log") == 0
    out = capsys.readouterr().out
    assert "model: loaded MedMPT" in out and "synthetic, not for clinical use" in out
    assert "exports: reader-study tables (CSV, Parquet)" in out and out.rstrip().endswith("self-test: passed")


def test_a_failed_export_check_fails_the_self_test(qapp, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(self_test, "check_exports", lambda: ("failed", "PDF font: not found"))
    assert self_test.run_self_test(qapp, tmp_path / "medmpt.log") == 1
    out = capsys.readouterr().out
    assert "exports: PDF font: not found" in out and "self-test: FAILED (1)" in out
