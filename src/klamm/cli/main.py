"""The `klamm` command: argument parsing only; each subcommand lives in its own module.

A subcommand module exposes `register(subparsers)`, which adds its parser and sets
`func=<callable(args) -> int>` as the parser default. Add new modules to `SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from klamm import __version__

# Modules under klamm.cli, in the order `klamm --help` lists them.
SUBCOMMANDS = (
    "broker",
    "topics",
    "produce",
    "consume",
    "groups",
    "transactions",
    "configs",
    "acls",
    "console",
    "bench",
    "registry",
    "demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="klamm", description="Kafka for Python people.")
    parser.add_argument("--version", action="version", version=f"klamm {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"klamm.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return int(args.func(args))
