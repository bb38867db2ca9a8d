"""Fixtures for the models/ tests: one random tiny package per session and its torch twin."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="session")
def tiny_package(random_package) -> Path:
    """The session's tiny random package (tests/conftest.py: config tiny, seed 0), built once."""
    return random_package


@pytest.fixture(scope="session")
def manifest(tiny_package) -> dict:
    return json.loads((tiny_package / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def tiny_model():
    """The torch model the tiny package was exported from (same seed, rebuilt)."""
    from models.testing import random_model_and_tokenizer

    model, _ = random_model_and_tokenizer("tiny", seed=0)
    return model


@pytest.fixture(scope="session")
def pixels() -> np.ndarray:
    """One random scan in [-1, 1], (1, 32, 3, 224, 224)."""
    rng = np.random.default_rng(7)
    return rng.uniform(-1.0, 1.0, size=(1, 32, 3, 224, 224)).astype(np.float32)


def open_session(path: Path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="session")
def sessions(tiny_package) -> dict:
    names = ("vision.onnx", "vision.fp16.onnx", "decoder.onnx", "decoder.fp16.onnx")
    return {name: open_session(tiny_package / name) for name in names}


@pytest.fixture(scope="session")
def vision_ort(sessions, pixels) -> dict[str, np.ndarray]:
    session = sessions["vision.onnx"]
    outputs = session.run(None, {"pixel_values": pixels})
    return {meta.name: value for meta, value in zip(session.get_outputs(), outputs, strict=True)}


@pytest.fixture(scope="session")
def vision_torch(tiny_model, pixels) -> dict:
    with torch.no_grad():
        return tiny_model.encode(torch.from_numpy(pixels))
