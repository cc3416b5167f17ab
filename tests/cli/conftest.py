"""Run the `klamm` CLI in-process (fast, captured) or as a subprocess (the real entry point)."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from klamm.cli.main import main
from klamm.testing import EmbeddedBroker


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Cli = Callable[..., Result]


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


def closed_port() -> str:
    """An address where nothing listens (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def interrupt(argv: list[str], after_s: float, env: dict[str, str] | None = None) -> Result:
    """`python -m klamm ARGV`, then Ctrl-C after `after_s` seconds, as a terminal sends it: SIGINT
    to the whole process group (an embedded broker's child process included)."""
    import os
    import signal
    import time

    with subprocess.Popen(
        [sys.executable, "-m", "klamm", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env=env,
    ) as process:
        try:
            time.sleep(after_s)
            os.killpg(process.pid, signal.SIGINT)
            out, err = process.communicate(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # whatever is left of the group
    return Result(process.returncode, out.decode(), err.decode())
