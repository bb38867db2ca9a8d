"""`medmpt info` and `medmpt bench load` as a user runs them."""

from __future__ import annotations

import json

from app.cli import main
from app.dicom.synthetic import SeriesSpec, slice_dataset, write_series


def _study(tmp_path):
    study = SeriesSpec().StudyInstanceUID
    chest = SeriesSpec(
        count=20,
        SeriesNumber=2,
        SeriesDescription="lung 1mm",
        StudyInstanceUID=study,
        PatientName="CLI^PATIENT",
    )
    write_series(tmp_path / "ct", chest, skip=(5,))
    scout = SeriesSpec(
        count=1,
        SeriesNumber=1,
        SeriesDescription="topogram",
        StudyInstanceUID=study,
        PatientName="CLI^PATIENT",
    )
    write_series(tmp_path / "ct", scout)
    (tmp_path / "ct" / "notes.txt").write_text("not dicom")
    return chest


def test_info_json_lists_series_problems_choice_and_file_problems(tmp_path, capsys):
    chest = _study(tmp_path)
    assert main(["info", str(tmp_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    series = summary["patients"][0]["studies"][0]["series"]
    assert [s["SeriesDescription"] for s in series] == ["topogram", "lung 1mm"]
    chest_summary = series[1]
    assert chest_summary["image_count"] == 19 and chest_summary["orientation"] == "axial"
    assert any("gap of 5.00 mm" in p for p in chest_summary["problems"])
    assert summary["choice"]["SeriesInstanceUID"] == chest.SeriesInstanceUID
    assert "lung kernel" in summary["choice"]["reason"]
    assert [p["cause"] for p in summary["problems"]] == ["not a DICOM file"]


def test_info_text_shows_series_choice_and_problems(tmp_path, capsys):
    _study(tmp_path)
    assert main(["info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert 'Series 2: CT "lung 1mm", 19 instance(s), 19 image(s), 64x64' in out
    assert "problem: gap of 5.00 mm" in out
    assert "Chosen for the model: series 2 (lung 1mm" in out
    assert "notes.txt: not a DICOM file" in out


def test_info_without_images_says_so_and_fails(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("hello")
    assert main(["info", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "Chosen for the model: no image series found" in out


def test_bench_load_prints_all_methods_side_by_side(tmp_path, capsys):
    spec = SeriesSpec(count=16, rows=32, columns=32)
    for index in range(spec.count):
        slice_dataset(spec, index).save_as(tmp_path / f"{index}.dcm", enforce_file_format=True)
    assert main(["bench", "load", str(tmp_path), "--repeat", "1", "--no-memory"]) == 0
    out = capsys.readouterr().out
    methods = ("ours", "ours-warm", "simpleitk", "pydicom", "raw", "ours-load", "simpleitk-read")
    for method in methods:
        assert f"\n{method} " in out
    assert "faster than SimpleITK" in out
    table = out[out.index("open-to-volume") :].splitlines()
    assert "cold (no cache)" in table[0] and "warm (index cache)" in table[0]
    for label in ("median s", "x faster than SimpleITK", "x the raw read", "peak / volume"):
        assert any(line.startswith(label) and len(line.split()) >= 3 for line in table)
