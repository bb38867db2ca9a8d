"""`medmpt report` on the shared real CT series with a random-weight model package."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app import cli
from app.tasks import Cancelled, run_sync


@pytest.fixture(scope="module")
def package_dir(random_package: Path) -> Path:
    """The session's random-weight package (tests/conftest.py)."""
    return random_package


@pytest.fixture(scope="module")
def series_uids(real_series_dir: Path) -> tuple[str, str, int]:
    from app.dicom import choose_series, index_sources

    series = choose_series(index_sources([real_series_dir])).series
    assert series is not None
    return series.StudyInstanceUID, series.SeriesInstanceUID, len(series.slices)


@pytest.mark.slow
def test_report_cli_writes_a_bound_report_with_heatmaps(
    real_series_dir: Path, package_dir: Path, series_uids, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    code = cli.main(["report", str(real_series_dir), "--model", str(package_dir), "--device", "cpu",
                     "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "FINDINGS:" in printed and "Timings (ms):" in printed and "not for clinical use" in printed
    report = json.loads((out / "report.json").read_text())
    study_uid, series_uid, depth = series_uids
    assert (report["StudyInstanceUID"], report["SeriesInstanceUID"]) == (study_uid, series_uid)
    assert report["source"]["SeriesInstanceUID"] == series_uid
    assert report["model_hash"] == hashlib.sha256((package_dir / "manifest.json").read_bytes()).hexdigest()
    assert report["volume_shape"][0] == depth
    assert report["sentences"], "no sentence in the drafted report"
    for sentence in report["sentences"]:
        assert 0 <= sentence["most_relevant_slice"] < depth
        assert len(sentence["slice_relevance"]) == depth
    assert report["pngs"]
    first = report["sentences"][0]["most_relevant_slice"]  # the first sentence's slice is always shown
    assert f"slice_{first:03d}_heatmap.png" in report["pngs"]
    for name in report["pngs"]:
        with Image.open(out / name) as png:  # a whole slice, in colour where the heatmap lies
            assert png.format == "PNG" and png.mode == "RGB"
            assert png.size == (report["volume_shape"][2], report["volume_shape"][1])
            rgb = np.asarray(png).astype(int)
        assert (np.abs(rgb[..., 0] - rgb[..., 2]) > 40).any(), f"{name} shows no heatmap colour"
    assert (out / "report.txt").read_text().startswith("MedMPT draft report")
    assert set(report["timings_ms"]) >= {"preprocess", "vision", "decode", "explain", "heatmaps"}
    assert report["series_problems"] == [] and "Series:" not in printed  # a clean series: nothing to warn of
    assert isinstance(report["checks"], list)  # text vs diagnosis-head conflicts, printed as warnings
    assert all(check in printed for check in report["checks"])
    # each head's probability comes with how far it can be trusted, in the JSON and the text
    assert set(report["diagnosis_notes"]) == set(report["diagnosis"])
    for head, note in report["diagnosis_notes"].items():
        assert note in ("uncalibrated probabilities",) or note.startswith("calibrated")
        assert f"  {head}: " in printed and note in printed


@pytest.mark.slow
def test_a_draft_on_a_series_with_missing_slices_says_so(gapped_series_dir: Path, package_dir: Path,
                                                        tmp_path: Path, capsys) -> None:
    """Three slices gone from the middle of the series: the draft is still made, but the printed
    report and report.json say it was made on a series with a gap, so nobody reads it as whole."""
    out = tmp_path / "out"
    assert cli.main(["report", str(gapped_series_dir), "--model", str(package_dir), "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    gaps = [p for p in report["series_problems"] if p.startswith("gap of")]
    assert gaps and "3 slice(s) missing" in gaps[0]
    assert f"\u26a0 Series: {gaps[0]}" in printed
    assert report["sentences"], "the draft is still made"


@pytest.mark.slow
def test_report_cli_json_and_chosen_series(real_series_dir: Path, package_dir: Path, series_uids,
                                           tmp_path: Path, capsys) -> None:
    code = cli.main(["report", str(real_series_dir), "--model", str(package_dir), "--device", "cuda",
                     "--series", series_uids[1], "--out", str(tmp_path), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["SeriesInstanceUID"] == series_uids[1]
    if report["device"] == "cpu":  # no GPU here: the fallback must be stated, not hidden
        assert any("CPU" in notice for notice in report["notices"])


def test_report_cli_without_a_model_says_so(real_series_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr("app.paths.default_model_dir", lambda: None)
    code = cli.main(["report", str(real_series_dir), "--out", str(tmp_path)])
    assert code == 2
    assert "no model package" in capsys.readouterr().err
    assert not (tmp_path / "report.json").exists()


def test_report_cli_unknown_series_is_a_clear_error(real_series_dir: Path, package_dir: Path,
                                                    tmp_path: Path, capsys) -> None:
    code = cli.main(["report", str(real_series_dir), "--model", str(package_dir), "--series", "1.2.3.4",
                     "--out", str(tmp_path)])
    assert code == 1
    assert "medmpt report:" in capsys.readouterr().err


@pytest.mark.slow
def test_draft_task_binds_uids_and_cancels(real_series_dir: Path, package_dir: Path, series_uids) -> None:
    from app.dicom import choose_series, index_sources, load_volume
    from app.drafting import draft_report_task
    from app.tasks import CancelToken
    from inference.runtime import ReportRuntime

    volume = load_volume(choose_series(index_sources([real_series_dir])).series)
    runtime = ReportRuntime.load(package_dir, device="cpu")
    first = run_sync(draft_report_task(volume, runtime))
    second = run_sync(draft_report_task(volume, runtime))
    assert first.matches(volume) and first.SeriesInstanceUID == series_uids[1]
    assert first.request_id != second.request_id
    token = CancelToken()
    task = draft_report_task(volume, runtime, token)
    with pytest.raises(Cancelled):
        for progress in task:
            if "tokens" in progress.message:
                token.cancel()
    # the shared runtime still drafts the same report after a cancelled draft
    assert run_sync(draft_report_task(volume, runtime)).result.text == first.result.text


def test_a_file_that_cannot_be_read_is_listed_with_the_draft(real_series_dir: Path, package_dir: Path,
                                                             tmp_path: Path, capsys) -> None:
    """A damaged file beside the series: the draft is still made, and the printed report and
    report.json name the file and why, since it may have been one of this series' slices."""
    import shutil

    folder = tmp_path / "series"
    shutil.copytree(real_series_dir, folder)
    victim = sorted(folder.glob("*.dcm"))[10]
    victim.write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff" + b"\x07" * 40)
    out = tmp_path / "out"
    assert cli.main(["report", str(folder), "--model", str(package_dir), "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert len(report["files_not_read"]) == 1 and victim.name in report["files_not_read"][0]
    assert "\u26a0 1 file(s) could not be read" in printed and victim.name in printed
    assert report["sentences"], "the draft is still made"
