"""`klamm broker --schema-registry` and `klamm registry`: a registry that answers, and start-up
failures as one line."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

MEDIA = "application/vnd.schemaregistry.v1+json"
RUN = "from klamm.cli.main import main\nraise SystemExit(main())"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _register(url: str, subject: str) -> Any:
    body = json.dumps({"schema": '"string"'}).encode()
    request = urllib.request.Request(f"{url}/subjects/{subject}/versions", data=body,
                                     method="POST", headers={"Content-Type": MEDIA})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _wait_until_serving(url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            with urllib.request.urlopen(f"{url}/subjects", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the registry never answered")


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err


def test_broker_serves_a_registry_in_process(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN, "broker", "--listen", "127.0.0.1:0", "--data-dir",
         str(tmp_path / "data"), "--schema-registry", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_until_serving(url, proc)
        assert _register(url, "s") == {"id": 1}
    finally:
        code, err = _stop(proc)
    assert code == 0, err
    assert "Traceback" not in err


def test_registry_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-c", RUN, "broker", "--listen", "127.0.0.1:0", "--data-dir",
             str(tmp_path / "data"), "--schema-registry", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"klamm broker: cannot serve the schema registry on 127.0.0.1:{port}"
    )


def test_standalone_registry_against_a_broker(kafka_broker: Any) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN, "registry", "--bootstrap", kafka_broker.bootstrap,
         "--listen", f"127.0.0.1:{port}", "--topic", f"_schemas-cli-{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_until_serving(url, proc)
        assert _register(url, "t") == {"id": 1}
    finally:
        code, err = _stop(proc)
    assert code == 0, err
