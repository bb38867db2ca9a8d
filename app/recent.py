"""Recently opened studies (paths and when), kept in the user data directory. No identifiers."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

from app import paths

log = logging.getLogger(__name__)
MAX_RECENT = 12


def _file() -> Path:
    return paths.user_data_dir() / "recent.json"


def recent_studies() -> list[dict[str, str]]:
    """Newest first: [{"path": ..., "opened": ISO time}], only paths that still exist."""
    try:
        items = json.loads(_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [i for i in items if isinstance(i, dict) and Path(str(i.get("path", ""))).exists()][:MAX_RECENT]


def remember_study(path: Path) -> None:
    """Put `path` first in the list (written atomically; failures are logged, not raised)."""
    entry = {"path": str(Path(path).resolve()), "opened": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    items = [entry] + [i for i in recent_studies() if i.get("path") != entry["path"]]
    target = _file()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(items[:MAX_RECENT], indent=1), encoding="utf-8")
        temporary.replace(target)
    except OSError as exc:
        log.warning("could not remember the recent study: %s", exc)
