"""Reads bundled resources through importlib.resources so the PyInstaller bundle finds them."""

from __future__ import annotations

from importlib import resources


def read_text(*parts: str) -> str:
    """Text of resources/<parts...>, e.g. read_text("styles", "dark.qss")."""
    return resources.files("resources").joinpath(*parts).read_text(encoding="utf-8")
