"""Read-only, locked and full stores fail with a clear StoreError and lose nothing already saved."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from app.reports import (
    ReportSession,
    ReportStore,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreReadOnlyError,
)
from app.reports.schema import SCHEMA_VERSION

from .conftest import Study

SAVED = {"FINDINGS": "Saved before the failure.", "IMPRESSION": "Kept."}
NEW = {"FINDINGS": "Typed after the failure.", "IMPRESSION": "Still in the editor."}


def _saved_session(path: Path, study: Study) -> tuple[int, int]:
    with ReportStore(path) as store:
        session = ReportSession.open(store, study.volume.StudyInstanceUID, study.volume.SeriesInstanceUID,
                                     "reader1", draft=study.draft)
        return session.report_id, session.save_draft(SAVED, session.version)


def test_read_only_store_refuses_saves_clearly_and_keeps_text(tmp_path: Path, study: Study) -> None:
    path = tmp_path / "reports.sqlite3"
    report_id, version = _saved_session(path, study)
    with ReportStore(path, read_only=True) as store:
        assert store.version(report_id).sections == SAVED  # reading still works
        with pytest.raises(StoreReadOnlyError, match="read-only.*Nothing already saved was lost"):
            store.save_version(report_id, NEW, version, "reader1")
    with ReportStore(path) as store:
        assert store.version(report_id).sections == SAVED


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores file permissions")
def test_store_in_a_read_only_folder_gives_a_clear_error(tmp_path: Path, study: Study) -> None:
    folder = tmp_path / "locked-down"
    report_id, version = _saved_session(folder / "reports.sqlite3", study)
    for name in os.listdir(folder):
        os.chmod(folder / name, 0o444)
    os.chmod(folder, 0o555)
    try:
        with pytest.raises(StoreReadOnlyError, match="read-only|cannot be opened"):
            with ReportStore(folder / "reports.sqlite3") as store:
                store.save_version(report_id, NEW, version, "reader1")
        with pytest.raises(StoreReadOnlyError):
            ReportStore(folder / "sub" / "reports.sqlite3")  # cannot even create the folder
    finally:
        os.chmod(folder, 0o755)
        for name in os.listdir(folder):
            os.chmod(folder / name, 0o644)
    with ReportStore(folder / "reports.sqlite3") as store:
        assert store.version(report_id).sections == SAVED


def test_locked_store_times_out_with_a_clear_error_then_recovers(tmp_path: Path, study: Study) -> None:
    path = tmp_path / "reports.sqlite3"
    report_id, version = _saved_session(path, study)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    try:
        with ReportStore(path, busy_timeout_ms=100) as store:
            with pytest.raises(StoreLockedError, match="locked by another program.*editor keeps your text"):
                store.save_version(report_id, NEW, version, "reader1")
            assert store.version(report_id).sections == SAVED  # WAL: reads go on during the lock
            other.execute("ROLLBACK")
            saved = store.save_version(report_id, NEW, version, "reader1")
            assert saved.sections == NEW and saved.version == version + 1
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()


def test_full_disk_gives_a_clear_error_and_loses_nothing(tmp_path: Path, study: Study) -> None:
    path = tmp_path / "reports.sqlite3"
    report_id, version = _saved_session(path, study)
    with ReportStore(path) as store:
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages}")  # the file cannot grow: as on a full disk
        huge = {"FINDINGS": "x" * 200_000, "IMPRESSION": ""}
        with pytest.raises(StoreFullError, match="full.*free some space"):
            store.save_version(report_id, huge, version, "reader1")
        assert store.version(report_id).sections == SAVED
        assert store.integrity_check() == "ok"
    with ReportStore(path) as store:
        assert store.version(report_id).version == version


def test_a_file_that_is_not_a_database_is_reported_as_damaged(tmp_path: Path) -> None:
    path = tmp_path / "reports.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreCorruptError, match="damaged or not a report database"):
        ReportStore(path)


def test_a_newer_schema_is_refused_not_downgraded(tmp_path: Path) -> None:
    path = tmp_path / "reports.sqlite3"
    ReportStore(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(StoreError, match="newer than this workstation"):
        ReportStore(path)


def test_a_store_path_that_cannot_be_a_folder_gives_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    with pytest.raises(StoreReadOnlyError, match="cannot be created or written"):
        ReportStore(blocker / "reports.sqlite3")
