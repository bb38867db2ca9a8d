"""The `medmpt` command line: a table of subcommands, each in its own module, imported on use.

Each subcommand module exposes `add_arguments(parser)` and `run(args) -> int`. Modules are
imported only when their command runs, so torch-side commands (from models/) never load on the
workstation's run-time path. Must not import Qt.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from dataclasses import dataclass

from app import __version__
from app.logging_setup import configure_logging


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    help: str
    needs_train_extra: bool = False


# Subcommand table. `module` is imported only when the command is used. Add a line per command.
COMMANDS: tuple[Command, ...] = (
    Command("info", "app.cli_info", "list the studies and series in a folder, zip or DICOMDIR"),
    Command("report", "app.cli_report", "draft a report for a CT series (the headless main job)"),
    Command("bench", "app.cli_bench", "benchmarks: load, infer, report, view, autosave"),
    Command("study", "app.cli_study", "reader study (human-AI collaboration): init, run, export, analyse"),
    Command("export", "app.cli_export", "export a stored report as DICOM SR, PDF, text or FHIR-style JSON"),
    Command("phantom", "models.cli_phantom", "make synthetic chest-CT phantoms with ground truth"),
    Command("convert-checkpoint", "models.cli_convert", "convert an official MedMPT checkpoint to a model package", True),
    Command("train", "models.cli_train", "train the tiny MedMPT on synthetic phantoms and write a package", True),
    Command("eval", "models.cli_eval", "evaluate a model package on held-out phantom studies", True),
    Command("calibrate", "models.cli_calibrate", "fit (or --check) a model package's diagnosis-head temperatures", True),
)


def _top_parser() -> argparse.ArgumentParser:
    lines = []
    for command in COMMANDS:
        extra = "  [needs the 'train' extra]" if command.needs_train_extra else ""
        lines.append(f"  {command.name:<20} {command.help}{extra}")
    parser = argparse.ArgumentParser(
        prog="medmpt",
        description="MedMPT workstation command line.",
        epilog="commands:\n" + "\n".join(lines) + "\n\nRun 'medmpt COMMAND --help' for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"medmpt {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="also log to the console")
    parser.add_argument("command", nargs="?", help="the command to run")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    # Options before the command belong to the top parser; the rest to the command.
    split = next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))
    top_args = top.parse_args(argv[: split + 1])
    if top_args.command is None:
        top.print_help()
        return 2
    by_name = {c.name: c for c in COMMANDS}
    command = by_name.get(top_args.command)
    if command is None:
        top.error(f"unknown command {top_args.command!r}")
    configure_logging(level=logging.DEBUG if top_args.verbose else logging.INFO, console=top_args.verbose)
    try:
        module = importlib.import_module(command.module)
    except ImportError as exc:
        hint = " Install the 'train' extra: pip install -e '.[train]'." if command.needs_train_extra else ""
        print(f"medmpt {command.name}: cannot load ({exc}).{hint}", file=sys.stderr)
        return 3
    parser = argparse.ArgumentParser(prog=f"medmpt {command.name}", description=command.help)
    module.add_arguments(parser)
    args = parser.parse_args(argv[split + 1 :])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
