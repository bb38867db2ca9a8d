"""Errors of the report store, each with a message a radiologist can act on. Imports only stdlib.

Every failure to write leaves what was saved before intact; the caller (the editor) keeps its
text and may retry. `translate` turns sqlite3 errors into these classes.
"""

from __future__ import annotations

import sqlite3


class StoreError(Exception):
    """Base class: the report store could not do what was asked (message says why)."""


class StoreReadOnlyError(StoreError):
    """The database or its folder cannot be written."""


class StoreLockedError(StoreError):
    """Another program holds the database locked for longer than the busy timeout."""


class StoreFullError(StoreError):
    """The disk (or the database's size limit) is full."""


class StoreCorruptError(StoreError):
    """The database file is damaged or is not a report database."""


class ReportNotFoundError(StoreError):
    """No report with that id (or for that study and series)."""


class ConflictError(StoreError):
    """Someone saved a newer version since this editor loaded its text."""

    def __init__(self, report_id: int, base_version: int, latest_version: int) -> None:
        self.report_id, self.base_version, self.latest_version = report_id, base_version, latest_version
        super().__init__(
            f"report {report_id} was changed elsewhere: this editor has version {base_version} "
            f"but version {latest_version} was saved meanwhile; nothing was overwritten. "
            "Reload the report (your text is still in the editor) and apply your change again.")


class SignedReportError(StoreError):
    """The report (or version) is signed and locked; only an amendment may change it."""


class ValidationError(StoreError):
    """A required value is missing or malformed (reader name, amendment reason, sections)."""


_PREFIX = "report store"


def translate(exc: sqlite3.Error, path: object, action: str) -> StoreError:
    """A StoreError subclass with a human message for a sqlite3 error raised while `action`."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc).lower()
    where = f"{_PREFIX} at {path}"
    if name.startswith("SQLITE_READONLY") or "readonly" in text or "read-only" in text:
        return StoreReadOnlyError(
            f"cannot {action}: the {where} is read-only. Nothing already saved was lost; "
            "keep the editor open and check the folder's permissions.")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return StoreLockedError(
            f"cannot {action}: the {where} is locked by another program. Nothing already saved "
            "was lost; try again in a moment (the editor keeps your text).")
    if name.startswith("SQLITE_FULL") or "full" in text:
        return StoreFullError(
            f"cannot {action}: the disk holding the {where} is full. Nothing already saved was "
            "lost; free some space and save again (the editor keeps your text).")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text or "not a database" in text:
        return StoreCorruptError(f"cannot {action}: the {where} is damaged or not a report database ({exc}).")
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return StoreReadOnlyError(
            f"cannot {action}: the {where} cannot be opened (missing folder or no permission).")
    if name.startswith("SQLITE_CONSTRAINT") and "append-only" in text:
        return SignedReportError(f"cannot {action}: saved versions are append-only and never change.")
    return StoreError(f"cannot {action}: {where} failed ({exc}).")
