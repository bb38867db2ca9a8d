"""`medmpt study init|export|analyse` from the command line (Qt-free paths)."""

from __future__ import annotations

import argparse

import pytest

from app import cli_study
from app.reader_study.protocol import ProtocolError, load_protocol


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli_study.add_arguments(parser)
    return cli_study.run(parser.parse_args(list(argv)))


def test_init_writes_a_protocol_that_loads(tmp_path, capsys):
    cases = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    for case in cases:
        case.mkdir()
    out = tmp_path / "study.toml"
    argv = ["init", str(out), "--study-id", "pilot-1", "--reader", "R1", "--reader", "R2", "--seed", "5"]
    for case in cases:
        argv += ["--case", str(case)]
    assert _run(*argv) == 0
    assert "2 readers, 3 cases" in capsys.readouterr().out
    protocol = load_protocol(out)
    assert protocol.study_id == "pilot-1" and protocol.readers == ("R1", "R2") and protocol.seed == 5
    assert [c.path for c in protocol.cases] == [c.resolve() for c in cases]
    assert protocol.design == "crossover" and protocol.sessions == 2
    assert {q.question_id for q in protocol.questions} == {"confidence", "suspicion"}
    assert _run(*argv) == 2  # never overwrites silently
    assert "exists" in capsys.readouterr().err


def test_bad_protocols_give_clear_messages(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[study]\nid = "x"\ndesign = "latin"\nreaders = ["R1"]\n', encoding="utf-8")
    with pytest.raises(ProtocolError, match="design"):
        load_protocol(bad)
    bad.write_text("[study\n", encoding="utf-8")
    assert _run("export", str(bad), "--out", str(tmp_path / "o")) == 2
    assert "cannot read the protocol" in capsys.readouterr().err
    assert _run("analyse", str(tmp_path / "missing.toml")) == 2
    assert "no protocol file" in capsys.readouterr().err


def test_export_and_analyse_without_logs_say_so(tmp_path, capsys):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    protocol = tmp_path / "p.toml"
    assert _run("init", str(protocol), "--study-id", "s", "--reader", "R1",
                "--case", str(tmp_path / "a"), "--case", str(tmp_path / "b")) == 0
    root = tmp_path / "logs"
    assert _run("export", str(protocol), "--data-root", str(root), "--out", str(tmp_path / "o")) == 1
    assert "no session logs" in capsys.readouterr().err


def test_export_and_analyse_write_their_files_and_print_the_comparison(tmp_path, capsys):
    from .test_analysis import _simulate

    cases = [tmp_path / f"case{i}" for i in range(4)]
    for case in cases:
        case.mkdir()
    text = "\n".join(
        ['readers = ["R1", "R2"]', "[study]", 'id = "pilot"', "seed = 7", 'imrmc_score = "suspicion"']
        + [f'[[cases]]\nid = "c{i}"\npath = "{c}"\ntruth = {i % 2}' for i, c in enumerate(cases, start=1)]
        + ['[[questions]]\nid = "confidence"\ntext = "Confidence"', '[[questions]]\nid = "suspicion"\ntext = "S"'])
    protocol_path = tmp_path / "p.toml"
    protocol_path.write_text(text, encoding="utf-8")
    root, out = tmp_path / "logs", tmp_path / "out"
    protocol = load_protocol(protocol_path)
    assert [c.truth for c in protocol.cases] == [1, 0, 1, 0]
    _simulate(protocol, root)
    assert _run("export", str(protocol_path), "--data-root", str(root), "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "16 reads (2 readers, 4 cases), 16 signed, 24 edit events" in printed
    for name in ("outcomes.csv", "outcomes.parquet", "edits.csv", "edits.parquet", "sentences.parquet"):
        assert f"wrote {out / name}" in printed and (out / name).stat().st_size > 0
    assert _run("analyse", str(protocol_path), "--data-root", str(root), "--out", str(out)) == 0
    printed = capsys.readouterr().out
    line = next(x for x in printed.splitlines() if x.startswith("active_s:"))
    assert "median difference (AI - unassisted) -" in line and "n=8 pairs (reader x case)" in line
    assert (out / "pilot.imrmc").exists() and (out / "time_per_arm.png").exists()


def test_run_refuses_an_unknown_reader_without_opening_a_window(tmp_path, capsys):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    protocol = tmp_path / "p.toml"
    _run("init", str(protocol), "--study-id", "s", "--reader", "R1",
         "--case", str(tmp_path / "a"), "--case", str(tmp_path / "b"))
    assert _run("run", str(protocol), "--reader", "Nobody") == 2
    assert "not in the protocol" in capsys.readouterr().err
