"""Key images: the lung window shows lung and soft tissue apart; heatmaps colour only where relevant."""

from __future__ import annotations

import numpy as np

from app.export.key_images import blend_heatmap, evidence_key_images, window_rgb

from .conftest import Study


def test_lung_window_separates_air_lung_and_soft_tissue() -> None:
    rgb = window_rgb(np.array([[-1000.0, -850.0, 40.0, 700.0]]))
    assert rgb.shape == (1, 4, 3) and rgb.dtype == np.uint8
    grey = rgb[0, :, 0]
    assert grey[0] < grey[1] < grey[2] <= grey[3]
    assert np.array_equal(rgb[..., 0], rgb[..., 2])  # grey, no colour


def test_heatmap_colours_only_the_relevant_region() -> None:
    rgb = np.full((8, 8, 3), 100, np.uint8)
    heat = np.zeros((4, 4))
    heat[0, 0] = 1.0  # top-left quarter after resizing to 8x8
    out = blend_heatmap(rgb, heat)
    assert np.array_equal(out[4:, 4:], rgb[4:, 4:])
    assert out[0, 0, 0] > 100 and out[0, 0, 2] < 100  # warm colour where the heat is


def test_evidence_images_follow_the_sentences_with_heatmaps(study: Study) -> None:
    class Result:  # what a ReportResult offers: sentences and slice_heatmap
        sentences = study.result.sentences

        @staticmethod
        def slice_heatmap(z: int, sentence: int) -> np.ndarray:
            return np.ones((4, 4))

    plain = evidence_key_images(study.volume, study.draft)
    heated = evidence_key_images(study.volume, study.draft, Result())
    peaks = list(dict.fromkeys(s.evidence[0].index for s in study.draft.sentences))
    assert [caption.split(":")[0] for caption, _ in plain] == [f"Slice {z + 1} of {study.volume.shape[0]}" for z in peaks]
    assert plain[0][1].shape == (*study.volume.shape[1:], 3)
    assert not np.array_equal(plain[0][1], heated[0][1])
