"""Configures logging to a rotating file in the user's log directory, with PHI redaction."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from app import paths
from app.phi import RedactingFilter

LOG_FILE_NAME = "medmpt.log"
_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO, log_dir: Path | None = None, console: bool = False) -> Path:
    """Send records from our packages to <user log dir>/medmpt.log; return the file's path.

    Idempotent: calling it again replaces the handlers it installed before.
    """
    directory = log_dir or paths.user_log_dir()
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / LOG_FILE_NAME
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_medmpt", False):
            root.removeHandler(handler)
            handler.close()
    file_handler = logging.handlers.RotatingFileHandler(
        log_path, maxBytes=5_000_000, backupCount=3, encoding="utf-8"
    )
    handlers: list[logging.Handler] = [file_handler]
    if console:
        handlers.append(logging.StreamHandler())
    for handler in handlers:
        handler._medmpt = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
    root.setLevel(min(root.level or level, level) if root.level else level)
    root.setLevel(level)
    return log_path
