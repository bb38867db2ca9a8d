"""A database written by an older schema opens, upgrades in place and keeps every report."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from app.reports import AuditAction, ReportSession, ReportStore
from app.reports.schema import SCHEMA_VERSION, migrate, schema_version


def _v1_database(path: Path) -> None:
    """A store as version 1 of the schema wrote it, with one signed report."""
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=1) == 1
    conn.execute("INSERT INTO reports VALUES (1, '1.2.3', '1.2.3.4', 'signed', 2, '2025-01-01T00:00:00+00:00')")
    for version, state, text in ((1, "draft", "AI text."), (2, "signed", "Signed text.")):
        conn.execute("INSERT INTO versions (report_id, version, state, sections, created_at, author, signed_by) "
                     "VALUES (1, ?, ?, ?, '2025-01-01T00:00:00+00:00', 'r', ?)",
                     (version, state, json.dumps({"FINDINGS": text}), "Dr A" if state == "signed" else ""))
    conn.execute("INSERT INTO audit (at, who, action, report_id, version) VALUES "
                 "('2025-01-01T00:00:00+00:00', 'r', 'signed', 1, 2)")
    conn.close()


def test_upgrading_from_v1_keeps_reports_and_adds_new_features(tmp_path: Path) -> None:
    path = tmp_path / "reports.sqlite3"
    _v1_database(path)
    with ReportStore(path) as store:
        assert schema_version(store._conn) == SCHEMA_VERSION
        applied = [r[0] for r in store._conn.execute("SELECT version FROM schema_version ORDER BY version")]
        assert applied == list(range(1, SCHEMA_VERSION + 1))
        assert store.version(1).sections == {"FINDINGS": "Signed text."}
        assert store.latest_signed(1).signed_by == "Dr A"
        assert [e.action for e in store.audit(1)] == [AuditAction.SIGNED]
        secret = store.setting("deid_secret")  # added by migration 2
        assert secret and len(secret) >= 32
        session = ReportSession.open(store, "1.2.3", "1.2.3.4", "reader")
        assert session.locked and session.sections == {"FINDINGS": "Signed text."}
    with ReportStore(path) as store:  # opening again migrates nothing and keeps the secret
        assert store.setting("deid_secret") == secret
        assert store._conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == SCHEMA_VERSION


def test_a_new_store_gets_a_different_secret(tmp_path: Path) -> None:
    with ReportStore(tmp_path / "a.sqlite3") as first, ReportStore(tmp_path / "b.sqlite3") as second:
        assert first.setting("deid_secret") != second.setting("deid_secret")
