"""Model packages are verified against their manifest before anything runs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from inference.errors import PackageError
from inference.package import NOT_CLINICAL_LABEL, load_package

FILES = ("vision.onnx", "vision.fp16.onnx", "decoder.onnx", "decoder.fp16.onnx", "tokenizer.json")


def _make_package(root: Path, **overrides) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    pins = {}
    for i, name in enumerate(FILES):
        (root / name).write_bytes(bytes([i]) * 64)
        pins[name] = hashlib.sha256((root / name).read_bytes()).hexdigest()
    manifest = {
        "format": "medmpt-package/1", "name": "hand-made", "version": "1.2.3", "clinical_use": False,
        "label": "", "architecture": {}, "preprocessing": {"windows": [{"name": "lung", "width": 1500, "level": -400}]},
        "tokens": {"bos": 2, "eos": 3, "pad": 0, "unk": 1, "max_length": 120},
        "generation": {"beams": 2, "max_steps": 120},
        "diagnosis": [{"name": "nodule", "classes": ["absent", "present"]}],
        "graphs": {"vision": {"fp32": "vision.onnx", "fp16": "vision.fp16.onnx"},
                   "decoder": {"fp32": "decoder.onnx", "fp16": "decoder.fp16.onnx"}},
        "files": pins,
    }
    manifest.update(overrides)
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_good_package_loads_with_provenance_hash(tmp_path: Path) -> None:
    root = _make_package(tmp_path / "pkg")
    package = load_package(root)
    assert package.name == "hand-made" and package.version == "1.2.3"
    assert package.model_hash == hashlib.sha256((root / "manifest.json").read_bytes()).hexdigest()
    assert package.label == NOT_CLINICAL_LABEL
    assert [h.classes for h in package.diagnosis_heads] == [("absent", "present")]


def test_changed_byte_in_a_graph_is_refused_naming_the_file(tmp_path: Path) -> None:
    root = _make_package(tmp_path / "pkg")
    data = bytearray((root / "decoder.onnx").read_bytes())
    data[10] ^= 0xFF
    (root / "decoder.onnx").write_bytes(bytes(data))
    with pytest.raises(PackageError, match=r"decoder\.onnx does not match its SHA-256"):
        load_package(root)


def test_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    root = _make_package(tmp_path / "pkg")
    (root / "vision.fp16.onnx").unlink()
    with pytest.raises(PackageError, match=r"vision\.fp16\.onnx is missing"):
        load_package(root)


def test_manifest_edit_changes_the_model_hash(tmp_path: Path) -> None:
    first = load_package(_make_package(tmp_path / "a")).model_hash
    second = load_package(_make_package(tmp_path / "b", version="1.2.4")).model_hash
    assert first != second


@pytest.mark.parametrize("overrides, message", [
    ({"format": "medmpt-package/9"}, "unknown model package format"),
    ({"tokens": {"bos": 2}}, "integer ids"),
    ({"graphs": {"vision": {"fp32": "vision.onnx"}}}, "fp32 decoder graph"),
    ({"files": {"vision.onnx": "00"}}, "does not pin"),
    ({"files": {"../outside.onnx": "00", **{f: "0" for f in FILES}}}, "outside the package"),
    # a channel a later version may define is refused when the package opens, not at the first draft
    ({"preprocessing": {"windows": [{"name": "lung", "width": 1500, "level": -400, "slices": "slab-mip"}]}},
     "window 'lung' shows slices 'slab-mip', which this version does not know"),
    ({"preprocessing": {"size": 224}}, "must list its 'windows'"),
])
def test_bad_manifest_is_refused(tmp_path: Path, overrides: dict, message: str) -> None:
    with pytest.raises(PackageError, match=message):
        load_package(_make_package(tmp_path / "pkg", **overrides))


def test_manifest_missing_a_field_is_refused(tmp_path: Path) -> None:
    root = _make_package(tmp_path / "pkg")
    manifest = json.loads((root / "manifest.json").read_text())
    del manifest["diagnosis"]
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match="lacks required field.*diagnosis"):
        load_package(root)


def test_not_json_or_no_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="no manifest.json"):
        load_package(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(PackageError, match="not valid JSON"):
        load_package(tmp_path)
