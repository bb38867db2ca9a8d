"""The `medmpt` command line: version, help, every registered command loads."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from app import __version__
from app.cli import COMMANDS, main

BIN = Path(sys.executable).parent


def test_medmpt_version_prints_the_package_version():
    result = subprocess.run([str(BIN / "medmpt"), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.strip() == f"medmpt {__version__}"


def test_help_lists_every_command(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command.name in out


def test_unknown_command_is_a_clear_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
    assert "unknown command 'no-such-command'" in capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_every_registered_command_loads_and_has_help(command, capsys):
    module = importlib.import_module(command.module)
    assert callable(module.add_arguments) and callable(module.run)
    with pytest.raises(SystemExit) as exc:
        main([command.name, "--help"])
    assert exc.value.code == 0
    assert f"medmpt {command.name}" in capsys.readouterr().out
