"""Run the `klamm` CLI in-process (fast, captured) or as a subprocess (the real entry point)."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from klamm.cli.main import main
from klamm.testing import EmbeddedBroker
from tests.cli.cli_helpers import Cli, Result


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    kafka_broker: EmbeddedBroker,
) -> Cli:
    """`cli("topics", "list", stdin=b"...")`: main() in-process against the test broker."""

    def run(*argv: str, stdin: bytes = b"", bootstrap: str | None = None) -> Result:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        capsys.readouterr()
        try:
            code = main([*argv, "-b", bootstrap or kafka_broker.bootstrap])
        except SystemExit as exc:  # argparse errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def cli_process(kafka_broker: EmbeddedBroker) -> Cli:
    """`python -m klamm ...` in a child process against the test broker."""

    def run(*argv: str, stdin: bytes = b"", bootstrap: str | None = None) -> Result:
        done = subprocess.run(
            [sys.executable, "-m", "klamm", *argv, "-b", bootstrap or kafka_broker.bootstrap],
            input=stdin,
            capture_output=True,
            timeout=60,
        )
        return Result(done.returncode, done.stdout.decode(), done.stderr.decode())

    return run


@pytest.fixture
def topic(cli: Cli, unique: str) -> str:
    """A fresh 2-partition topic."""
    name = f"cli-{unique}"
    assert cli("topics", "create", name, "--partitions", "2").code == 0
    return name
