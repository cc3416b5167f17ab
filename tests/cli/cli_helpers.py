"""Helpers shared by the CLI tests (their fixtures are in conftest.py)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Cli = Callable[..., Result]


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
