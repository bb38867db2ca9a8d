"""scripts/prune_fatbin.py, which slims ONNX Runtime's CUDA library for the GPU machine: it must
blank other architectures' GPU code and nothing else, or ONNX Runtime fails to load there."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "prune_fatbin.py"


@pytest.fixture(scope="module")
def prune_fatbin():
    spec = importlib.util.spec_from_file_location("prune_fatbin", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def entry(kind: int, sm: int, payload: bytes) -> bytes:
    header = bytearray(64)
    struct.pack_into("<HHIQ", header, 0, kind, 0x101, len(header), len(payload))
    struct.pack_into("<I", header, 28, sm)
    return bytes(header) + payload


def container(*entries: bytes) -> bytes:
    body = b"".join(entries)
    return struct.pack("<IHHQ", 0xBA55ED50, 1, 16, len(body)) + body


def test_only_other_architectures_cubins_are_blanked(prune_fatbin, tmp_path):
    host = b"\x7fELF host code " * 8
    sm80, sm90, ptx = b"\x11" * 96, b"\x22" * 80, b"\x33" * 48
    library = host + container(entry(2, 80, sm80), entry(2, 90, sm90), entry(1, 80, ptx)) + host
    # A stray magic number in host code must not be taken for a container.
    library += struct.pack("<IHH", 0xBA55ED50, 7, 3) + host
    (tmp_path / "lib.so").write_bytes(library)

    assert prune_fatbin.main([str(tmp_path / "lib.so"), str(tmp_path / "out.so")]) == 0
    pruned = (tmp_path / "out.so").read_bytes()
    assert len(pruned) == len(library)  # every offset the loader follows is unchanged
    assert sm80 not in pruned and b"\x00" * 96 in pruned
    assert sm90 in pruned and ptx in pruned
    assert pruned.startswith(host) and pruned.endswith(host)
    assert [i for i, (a, b) in enumerate(zip(library, pruned, strict=True)) if a != b] == list(
        range(library.index(sm80), library.index(sm80) + len(sm80)))


def test_a_library_without_the_wanted_architecture_is_not_written(prune_fatbin, tmp_path, capsys):
    (tmp_path / "lib.so").write_bytes(container(entry(2, 80, b"\x11" * 32)))
    assert prune_fatbin.main([str(tmp_path / "lib.so"), str(tmp_path / "out.so")]) == 1
    assert not (tmp_path / "out.so").exists()
    assert "no sm_90 code" in capsys.readouterr().err
