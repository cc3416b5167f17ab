"""`klamm console` and `klamm broker --console`: the real entry points, in child processes."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from klamm.cli.main import main
from klamm.testing import EmbeddedBroker
from tests.console.harness import http

# Seconds a child may take to print its URL: start-up is well under a second; a loaded CI
# machine gets ample room.
START_S = 30


def start(*argv: str) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "klamm", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + START_S
    assert child.stdout is not None
    lines = []
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"klamm console: open (http://\S+)", line)
        if found:
            return child, found.group(1).rstrip("/")
    child.kill()
    child.communicate()
    raise AssertionError("no console URL printed:\n" + "".join(lines))


def stop(child: subprocess.Popen[str]) -> int:
    return stop_with_output(child)[0]


def stop_with_output(child: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGTERM, then (the exit code, what it printed after starting)."""
    child.send_signal(signal.SIGTERM)
    try:
        output, _ = child.communicate(timeout=20)  # drains and closes the output pipe
    except subprocess.TimeoutExpired:
        child.kill()
        output, _ = child.communicate()
    return child.returncode, output


def test_klamm_console_serves_any_cluster(kafka_broker: EmbeddedBroker) -> None:
    child, url = start("console", "--bootstrap", kafka_broker.bootstrap, "--listen", "127.0.0.1:0")
    try:
        reply = http(url + "/")
        assert reply.status == 200 and "Overview" in reply.body
    finally:
        assert stop(child) == 0


def test_klamm_broker_with_console(tmp_path: Path) -> None:
    child, url = start("broker", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"),
                       "--console", "127.0.0.1:0", "--console-read-only",
                       "--schema-registry", "127.0.0.1:0")  # fmt: skip
    try:
        reply = http(url + "/topics")
        assert reply.status == 200 and "read-only" in reply.body
    finally:
        code, output = stop_with_output(child)
    assert code == 0  # the console stops with the broker
    # ... before it: its clients (and the registry's) close while the broker still answers,
    # instead of printing connection failures on every Ctrl-C.
    assert "Connection refused" not in output, output


def test_console_beyond_loopback_without_login_is_refused(
    capsys: pytest.CaptureFixture[str], kafka_broker: EmbeddedBroker
) -> None:
    assert main(["console", "-b", kafka_broker.bootstrap, "--listen", "0.0.0.0:0"]) == 2
    assert "without a login" in capsys.readouterr().err
    assert main(["broker", "--listen", "127.0.0.1:0", "--console", "0.0.0.0:0"]) == 2
    assert "without a login" in capsys.readouterr().err


def test_console_without_a_cluster_fails_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert main(["console", "-b", f"127.0.0.1:{port}", "--listen", "127.0.0.1:0",
                 "--timeout", "1"]) == 1  # fmt: skip
    assert f"klamm console: cannot reach 127.0.0.1:{port}" in capsys.readouterr().err


def test_broker_refuses_a_busy_console_address(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["broker", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path),
                     "--console", f"127.0.0.1:{port}"])  # fmt: skip
    assert code == 2
    assert f"cannot serve the console on 127.0.0.1:{port}" in capsys.readouterr().err


def test_browser_bounds_from_the_command_line() -> None:
    from klamm.cli.console import console_config
    from klamm.cli.main import build_parser

    args = build_parser().parse_args(["console", "--page-bytes", "1000", "--scan-messages", "7"])
    config = console_config(args, host="127.0.0.1", port=0, brokers="b:1")
    assert (config.page_bytes, config.scan_messages) == (1000, 7)
    args = build_parser().parse_args(["broker", "--console", "127.0.0.1:0"])
    config = console_config(args, host="127.0.0.1", port=0, brokers="b:1")
    assert config.page_bytes == 4 * 1024 * 1024 and not config.read_only


def test_a_console_beside_a_broker_logs_in_as_a_super_user_when_there_is_one() -> None:
    """With an authorizer, the first SASL user may see nothing: a super user sees it all."""
    from klamm.broker.config import BrokerConfig
    from klamm.cli.console import console_login

    users = {"app": "app-pw", "ops": "ops-pw"}
    sasl = BrokerConfig(security_protocol="SASL_PLAINTEXT", sasl_users=users)
    assert console_login(sasl) == {"mechanism": "plain", "username": "app", "password": "app-pw"}
    secured = sasl.replace(super_users=("User:ops",), sasl_mechanisms=("SCRAM-SHA-512",))
    assert console_login(secured) == {
        "mechanism": "scram-sha-512", "username": "ops", "password": "ops-pw"
    }  # fmt: skip
    assert console_login(BrokerConfig()) is None
