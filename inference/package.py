"""Loading and verifying a model package (manifest + files pinned by SHA-256).

Follows docs/model-package.md (format `medmpt-package/1`). Must not import onnxruntime, app/,
ui/, DICOM libraries or torch.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.errors import PackageError
from inference.preprocess import SLICE_SOURCES

SUPPORTED_FORMATS = ("medmpt-package/1",)
REQUIRED_FIELDS = (
    "format", "name", "version", "clinical_use", "architecture", "preprocessing", "tokens",
    "generation", "diagnosis", "graphs", "files",
)
REQUIRED_TOKENS = ("bos", "eos", "pad")
NOT_CLINICAL_LABEL = "synthetic, not for clinical use"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class DiagnosisHead:
    """One classification head of the vision graph: output `diag_<name>` over `classes`.

    `temperature` (manifest key, default 1) divides the head's logits before it is shown
    (inference.calibration); `calibration` records how it was fitted and what it achieved.
    """

    name: str
    classes: tuple[str, ...]
    temperature: float = 1.0
    calibration: dict[str, Any] | None = None


@dataclass(frozen=True)
class ModelPackage:
    """A verified model package: its folder, parsed manifest and provenance hash."""

    root: Path
    manifest: dict[str, Any]
    model_hash: str  # SHA-256 of manifest.json (which pins every other file)

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def display_name(self) -> str:
        return str(self.manifest.get("display_name") or self.name)

    @property
    def clinical_use(self) -> bool:
        return bool(self.manifest["clinical_use"])

    @property
    def label(self) -> str:
        """What the UI and reports must print beside the model's output."""
        own = str(self.manifest.get("label") or "").strip()
        if self.clinical_use:
            return own
        if not own or own.lower() == NOT_CLINICAL_LABEL:
            return NOT_CLINICAL_LABEL
        return f"{NOT_CLINICAL_LABEL} ({own})"

    @property
    def preprocessing(self) -> dict[str, Any]:
        return self.manifest["preprocessing"]

    @property
    def tokens(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.manifest["tokens"].items() if isinstance(v, int)}

    @property
    def generation(self) -> dict[str, Any]:
        return self.manifest["generation"]

    @property
    def diagnosis_heads(self) -> tuple[DiagnosisHead, ...]:
        return tuple(
            DiagnosisHead(str(h["name"]), tuple(str(c) for c in h["classes"]),
                          float(h.get("temperature", 1.0)), h.get("calibration"))
            for h in self.manifest["diagnosis"]
        )

    def graph_path(self, graph: str, precision: str) -> Path:
        """Path of graph `vision`|`decoder` at precision `fp32`|`fp16`."""
        try:
            return self.root / self.manifest["graphs"][graph][precision]
        except KeyError as exc:
            raise PackageError(f"manifest names no {precision} {graph} graph") from exc

    @property
    def tokenizer_path(self) -> Path:
        return self.root / "tokenizer.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def load_package(root: str | Path, verify: bool = True) -> ModelPackage:
    """Read and check the package in `root`; raise PackageError naming what is wrong.

    With `verify`, every file listed in the manifest's `files` must exist and match its SHA-256.
    """
    root = Path(root)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise PackageError(f"no manifest.json in model package folder {root}")
    raw = manifest_path.read_bytes()
    try:
        manifest = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PackageError(f"manifest.json in {root} is not valid JSON: {exc}") from exc
    _check_manifest(manifest, root)
    if verify:
        _check_files(manifest["files"], root)
    return ModelPackage(root=root, manifest=manifest, model_hash=hashlib.sha256(raw).hexdigest())


def _check_manifest(manifest: Any, root: Path) -> None:
    if not isinstance(manifest, dict):
        raise PackageError(f"manifest.json in {root} is not a JSON object")
    fmt = manifest.get("format")
    if fmt not in SUPPORTED_FORMATS:
        raise PackageError(
            f"unknown model package format {fmt!r} in {root} (supported: {', '.join(SUPPORTED_FORMATS)})"
        )
    missing = [f for f in REQUIRED_FIELDS if f not in manifest]
    if missing:
        raise PackageError(f"manifest.json in {root} lacks required field(s): {', '.join(missing)}")
    tokens = manifest["tokens"]
    if not isinstance(tokens, dict) or any(not isinstance(tokens.get(t), int) for t in REQUIRED_TOKENS):
        raise PackageError(f"manifest.json 'tokens' must give integer ids for {', '.join(REQUIRED_TOKENS)}")
    graphs = manifest["graphs"]
    for graph in ("vision", "decoder"):
        if not isinstance(graphs, dict) or not isinstance(graphs.get(graph), dict) or "fp32" not in graphs[graph]:
            raise PackageError(f"manifest.json 'graphs' lacks the fp32 {graph} graph")
    files = manifest["files"]
    if not isinstance(files, dict) or not files:
        raise PackageError("manifest.json 'files' must map each file name to its SHA-256")
    for name in [g[p] for g in graphs.values() for p in g] + ["tokenizer.json"]:
        if name not in files:
            raise PackageError(f"manifest.json 'files' does not pin {name}")
    heads = manifest["diagnosis"]
    if not isinstance(heads, list) or any(not isinstance(h, dict) or "name" not in h or "classes" not in h for h in heads):
        raise PackageError("manifest.json 'diagnosis' must be a list of {name, classes}")
    for head in heads:
        temperature = head.get("temperature", 1.0)
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0.01 <= temperature <= 1000:
            raise PackageError(f"manifest.json: diagnosis head {head['name']!r} has temperature {temperature!r}; "
                               "it must be a number between 0.01 and 1000")
        if head.get("calibration") is not None and not isinstance(head["calibration"], dict):
            raise PackageError(f"manifest.json: diagnosis head {head['name']!r} has a 'calibration' that is not an object")
    preprocessing = manifest["preprocessing"]
    windows = preprocessing.get("windows") if isinstance(preprocessing, dict) else None
    if not isinstance(windows, list) or any(not isinstance(w, dict) for w in windows):
        raise PackageError("manifest.json 'preprocessing' must list its 'windows'")
    for window in windows:
        # Refused here, when the package is opened, not at the first draft.
        source = window.get("slices", "self")
        if source not in SLICE_SOURCES:
            raise PackageError(f"manifest.json: window {window.get('name')!r} shows slices {source!r}, which this "
                               f"version does not know (one of {', '.join(SLICE_SOURCES)}); a newer workstation may")


def _check_files(files: dict[str, Any], root: Path) -> None:
    resolved_root = root.resolve()
    paths = {}
    for name in files:
        path = (root / name).resolve()
        if resolved_root not in path.parents:
            raise PackageError(f"manifest.json lists {name}, which lies outside the package folder")
        if not path.is_file():
            raise PackageError(f"model package file {name} is missing from {root}")
        paths[name] = path
    # The graphs are hashed side by side: hashlib releases the GIL, and a `paper` package holds
    # 1.1 GB of graphs, which one core hashes in about a second.
    with ThreadPoolExecutor(max_workers=min(4, len(paths)), thread_name_prefix="package-sha256") as pool:
        digests = dict(zip(paths, pool.map(sha256_file, paths.values()), strict=True))
    for name, expected in files.items():
        actual = digests[name]
        if actual != str(expected).lower():
            raise PackageError(
                f"model package file {name} does not match its SHA-256 in manifest.json "
                f"(expected {str(expected)[:12]}..., found {actual[:12]}...); the package is damaged or altered"
            )
