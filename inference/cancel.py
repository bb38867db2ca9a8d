"""Reading any caller's cancel token (an object with `.cancelled`, or a threading.Event).

Must not import app/, ui/, DICOM libraries or torch.
"""

from __future__ import annotations

from typing import Any


def is_cancelled(token: Any) -> bool:
    """True when `token` asks to stop: `.cancelled` attribute, `is_set()` method, or None (never)."""
    if token is None:
        return False
    flag = getattr(token, "cancelled", None)
    if flag is not None:
        return bool(flag() if callable(flag) else flag)
    is_set = getattr(token, "is_set", None)
    if callable(is_set):
        return bool(is_set())
    raise TypeError(f"cancel token {type(token).__name__} has neither .cancelled nor .is_set()")
