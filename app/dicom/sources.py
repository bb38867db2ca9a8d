"""Turns what the user opened (folders, files, a .zip, a DICOMDIR) into a list of files to index.

Must not import Qt. Uses pydicom's FileSet for DICOMDIR.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path

from app.dicom.model import FileProblem, FileRef

log = logging.getLogger("app.dicom.sources")


def _is_dicomdir(path: Path) -> bool:
    return path.name.upper() == "DICOMDIR"


def _walk_folder(folder: Path) -> list[FileRef]:
    refs: list[FileRef] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.startswith(".") or name.upper() == "DICOMDIR" or not os.path.isfile(path):
                continue  # hidden files, DICOMDIR (lists files the walk finds anyway), FIFOs, devices
            refs.append(FileRef(path))
    return refs


def _zip_members(path: Path) -> tuple[list[FileRef], list[FileProblem]]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [
                info.filename
                for info in archive.infolist()
                if not info.is_dir()
                and not Path(info.filename).name.startswith(".")
                and "__MACOSX" not in info.filename
                and Path(info.filename).name.upper() != "DICOMDIR"
            ]
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return [], [FileProblem(str(path), f"cannot open zip archive: {exc}")]
    return [FileRef(str(path), name) for name in names], []


def _dicomdir_files(path: Path) -> tuple[list[FileRef], list[FileProblem]]:
    from pydicom import dcmread
    from pydicom.fileset import FileSet

    try:
        fileset = FileSet(dcmread(path))
        paths = [Path(instance.path) for instance in fileset]
    except Exception as exc:  # noqa: BLE001 - any failure of a bad DICOMDIR is reported
        return [], [FileProblem(str(path), f"cannot read DICOMDIR: {exc}")]
    refs, problems = [], []
    for file_path in paths:
        if file_path.is_file():
            refs.append(FileRef(str(file_path)))
        else:
            problems.append(FileProblem(str(file_path), "listed in DICOMDIR but missing"))
    return refs, problems


def expand_sources(
    paths: Iterable[str | os.PathLike[str]],
) -> tuple[list[FileRef], list[FileProblem]]:
    """Files to index (deduplicated, in a stable order) and the sources that could not be used."""
    refs: list[FileRef] = []
    problems: list[FileProblem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = _walk_folder(path)
            if not found:
                problems.append(FileProblem(str(path), "folder contains no files"))
            refs.extend(found)
        elif not path.is_file():
            cause = "not a regular file" if path.exists() else "no such file or folder"
            problems.append(FileProblem(str(path), cause))
        elif _is_dicomdir(path):
            more, bad = _dicomdir_files(path)
            refs.extend(more)
            problems.extend(bad)
        elif path.suffix.lower() == ".zip":
            more, bad = _zip_members(path)
            refs.extend(more)
            problems.extend(bad)
        else:
            refs.append(FileRef(str(path)))
    unique = list(dict.fromkeys(refs))
    log.info("sources expanded: %d file(s), %d problem(s)", len(unique), len(problems))
    return unique, problems
