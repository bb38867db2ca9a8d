"""`medmpt phantom make|corpus` through the real command table."""

from __future__ import annotations

import json

import pydicom

from app.cli import main


def test_make_writes_studies_with_truth_and_report(tmp_path, capsys):
    out = tmp_path / "set"
    rc = main(["phantom", "make", str(out), "--cases", "2", "--seed", "5", "--size", "64",
               "--min-slices", "8", "--max-slices", "10"])
    assert rc == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("case-0001  64x64x") and lines[1].startswith("case-0002  64x64x")
    assert lines[-1].startswith("wrote 2 case(s) to")
    for name in ("case-0001", "case-0002"):
        folder = out / name
        files = sorted(folder.glob("IM*.dcm"))
        assert 8 <= len(files) <= 10
        truth = json.loads((folder / "findings.json").read_text())
        assert truth["geometry"]["num_slices"] == len(files)
        assert (folder / "report.txt").read_text() == truth["report"] + "\n"
        ds = pydicom.dcmread(files[0])
        assert ds.file_meta.TransferSyntaxUID == truth["dicom"]["TransferSyntaxUID"]
    syntaxes = {json.loads((out / n / "findings.json").read_text())["dicom"]["TransferSyntaxUID"]
                for n in ("case-0001", "case-0002")}
    assert len(syntaxes) == 2, "the default mix varies the transfer syntax"


def test_make_is_reproducible(tmp_path, capsys):
    args = ["--cases", "1", "--seed", "9", "--size", "64", "--min-slices", "8", "--max-slices", "8"]
    assert main(["phantom", "make", str(tmp_path / "a"), *args]) == 0
    assert main(["phantom", "make", str(tmp_path / "b"), *args]) == 0
    a = sorted((tmp_path / "a" / "case-0001").iterdir())
    b = sorted((tmp_path / "b" / "case-0001").iterdir())
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    capsys.readouterr()


def test_bad_arguments_give_a_message(tmp_path, capsys):
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    for argv, message in (
        (["phantom", "make", str(tmp_path / "o"), "--cases", "0"], "--cases"),
        (["phantom", "make", str(tmp_path / "o"), "--size", "100"], "--size"),
        (["phantom", "make", str(tmp_path / "o"), "--min-slices", "50", "--max-slices", "40"], "slices"),
        (["phantom", "make", str(afile)], "not a folder"),
        (["phantom"], "choose an action"),
        (["phantom", "corpus", str(tmp_path), "--reports", "3"], "folder"),
    ):
        assert main(argv) == 2
        assert message in capsys.readouterr().err


def test_corpus_writes_one_report_per_line(tmp_path, capsys):
    path = tmp_path / "corpus.txt"
    assert main(["phantom", "corpus", str(path), "--reports", "50", "--seed", "1"]) == 0
    lines = path.read_text().splitlines()
    assert len(lines) == 50 and all(line.startswith("FINDINGS:") for line in lines)
    assert "wrote 50 reports" in capsys.readouterr().out


def test_bench_prints_times_per_study_and_transfer_syntax(capsys):
    assert main(["phantom", "bench", "--size", "64", "--slices", "4"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("make_case 64x64x4: ") and "s per study" in lines[0]
    assert any("Explicit VR Little Endian" in line for line in lines[1:])
    assert main(["phantom", "bench", "--slices", "0"]) == 2


def test_make_with_two_workers_matches_one_worker(tmp_path, capsys):
    args = ["--cases", "2", "--seed", "4", "--size", "64", "--min-slices", "6", "--max-slices", "6"]
    assert main(["phantom", "make", str(tmp_path / "one"), *args]) == 0
    assert main(["phantom", "make", str(tmp_path / "two"), *args, "--workers", "2"]) == 0
    for name in ("case-0001", "case-0002"):
        one = (tmp_path / "one" / name / "IM0003.dcm").read_bytes()
        assert one == (tmp_path / "two" / name / "IM0003.dcm").read_bytes()
    assert capsys.readouterr().out.count("case-0002") == 2
