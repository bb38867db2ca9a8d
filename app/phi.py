"""Keeps patient identifiers out of logs: a registry of identifying strings and a logging filter.

Code that opens DICOM registers the identifying values it saw (PatientName, PatientID, ...);
the filter redacts any registered value from every log record before it is written. Logging
code should not put identifiers in messages in the first place; this is the safety net.
Must not import pydicom or Qt.
"""

from __future__ import annotations

import logging
import re
import threading

REDACTED = "[redacted]"
# DICOM keywords whose values identify a patient (PS3.15 basic profile, the ones we read).
IDENTIFYING_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "OtherPatientIDs",
    "OtherPatientNames",
    "AccessionNumber",
    "InstitutionName",
    "ReferringPhysicianName",
)

_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern[str] | None = None


def register_identifiers(values: dict[str, object] | list[object]) -> None:
    """Remember identifying values so the log filter can redact them."""
    global _pattern
    items = values.values() if isinstance(values, dict) else values
    new = set()
    for value in items:
        text = str(value or "").strip()
        if len(text) >= 2:
            new.add(text)
            # PatientName "DOE^JOHN" also appears as "DOE JOHN" or "JOHN DOE" in messages.
            if "^" in text:
                parts = [p for p in text.split("^") if p]
                new.update(p for p in parts if len(p) >= 3)
    with _lock:
        if new - _values:
            _values.update(new)
            _pattern = None  # rebuilt lazily by the next redaction: registering stays O(1)


def _current_pattern() -> re.Pattern[str] | None:
    global _pattern
    with _lock:
        if _pattern is None and _values:
            ordered = sorted(_values, key=len, reverse=True)
            _pattern = re.compile("|".join(re.escape(v) for v in ordered), re.IGNORECASE)
        return _pattern


def redact(text: str) -> str:
    pattern = _current_pattern()
    return pattern.sub(REDACTED, text) if pattern is not None else text


def clear_identifiers() -> None:
    global _pattern
    with _lock:
        _values.clear()
        _pattern = None


class RedactingFilter(logging.Filter):
    """Replaces registered identifiers in the formatted message (args included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _values:
            return True
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True
