"""`klamm demo` as a command: the error contract, the shared console, no files left behind.

The scenario itself is tested in tests/client/test_demo.py.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from klamm.testing import EmbeddedBroker
from tests.cli.cli_helpers import Cli, closed_port, interrupt


def test_demo_rejects_bad_arguments(cli: Cli) -> None:
    # --timeout 5: before the fix, -n 0 was accepted and waited out the whole timeout.
    for argv in (["-n", "0", "--timeout", "5"], ["-n", "-5", "--timeout", "5"],
                 ["--timeout", "nan"], ["--timeout", "0"]):  # fmt: skip
        result = cli("demo", *argv)
        assert result.code == 2, argv
        assert "Traceback" not in result.err
    assert cli("demo", bootstrap="127.0.0.1:99999").code == 2


def test_demo_without_a_cluster_is_one_line(cli: Cli) -> None:
    address = closed_port()
    result = cli("demo", bootstrap=address)
    assert result.code == 1
    assert (
        result.err == f"klamm demo: cannot connect to {address} ({address}: Connection refused)\n"
    )


def test_demo_piped_output_does_not_wrap_and_leaves_no_files(
    cli: Cli, kafka_broker: EmbeddedBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = cli("demo", "-n", "12", "--timeout", "30")
    assert result.code == 0, result.err
    # The shared console: piped output gets the wide virtual screen, so each row is one line.
    dead_letter = [line for line in result.out.splitlines() if "dead-letter topic" in line]
    assert len(dead_letter) == 1 and "after 2 retries: ValueError" in dead_letter[0]
    assert max(len(line) for line in result.out.splitlines()) > 80
    assert list(tmp_path.iterdir()) == []  # the payments database went with the run


def test_demo_ctrl_c_exits_130_quietly(tmp_path: Path) -> None:
    result = interrupt(["demo", "-n", "1000000"], after_s=2.5,
                       env={**os.environ, "TMPDIR": str(tmp_path)})  # fmt: skip
    assert result.code == 130, result.err
    assert result.err == ""  # no traceback, no librdkafka "Connect ... refused" lines
    assert list(tmp_path.iterdir()) == []
