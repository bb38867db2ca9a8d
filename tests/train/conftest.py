"""Fixtures for the training tests: two tiny rendered phantoms and the report tokenizer."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(scope="session")
def report_tokenizer():
    from models.phantoms.corpus import report_corpus
    from models.train.tokenizer import train_report_tokenizer

    return train_report_tokenizer(report_corpus(1500, 3))


@pytest.fixture(scope="session")
def small_studies():
    """Two phantoms rendered at 48 x 48 (with findings), preprocessed to the model input."""
    from models.train.data import render_study

    return [render_study(seed, index=i, size=48) for i, seed in enumerate((1, 7))]
