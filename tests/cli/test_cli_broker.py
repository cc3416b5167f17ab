"""`klamm broker` start-up failures: one line on stderr naming what failed, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest


def _broker(*argv: str | Path, code: str = "") -> subprocess.CompletedProcess[str]:
    """`klamm broker ARGV` in a child process (after running `code` there), expected to fail."""
    run = f"{code}\nfrom klamm.cli.main import main\nraise SystemExit(main())"
    return subprocess.run(
        [sys.executable, "-c", run, "broker", "--listen", "127.0.0.1:0", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("klamm broker: ")
    return lines[0]


def test_broker_missing_certificate(tmp_path: Path) -> None:
    result = _broker("--data-dir", tmp_path / "data", "--ssl-certfile", tmp_path / "none.pem")
    assert result.returncode == 1
    line = _one_line(result)
    assert "TLS certificate" in line and "none.pem" in line and "No such file" in line


def test_broker_invalid_certificate(tmp_path: Path) -> None:
    pem = tmp_path / "bad.pem"
    pem.write_text("not a certificate\n")
    result = _broker("--data-dir", tmp_path / "data", "--ssl-certfile", pem)
    assert result.returncode == 1
    line = _one_line(result)
    assert "TLS certificate" in line and "bad.pem" in line


def test_broker_metrics_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _broker("--data-dir", tmp_path / "data", "--metrics", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in _one_line(result)


def test_broker_config_file_not_utf8(tmp_path: Path) -> None:
    config = tmp_path / "server.properties"
    config.write_bytes(b"\xff\xfe=1\n")
    result = _broker("--data-dir", tmp_path / "data", "--config", config)
    assert result.returncode == 2
    assert "not UTF-8" in _one_line(result)


@pytest.mark.parametrize("error", ["AttributeError('boom')", "PermissionError(13, 'denied')"])
def test_broker_unexpected_startup_failure_is_one_line(tmp_path: Path, error: str) -> None:
    # As a data directory another user owns once did (an AttributeError deep in the group
    # coordinator's start): whatever start-up raises, the user gets one line.
    code = (
        "import klamm.broker.node as node\n"
        f"async def start(self): raise {error}\n"
        "node.Broker.start = start"
    )
    result = _broker("--data-dir", tmp_path / "data", code=code)
    assert result.returncode == 1
    line = _one_line(result)
    assert line.startswith("klamm broker: cannot start: ")
    assert ("AttributeError: boom" in line) if "boom" in error else ("denied" in line)
