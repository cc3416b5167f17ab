"""`klamm bench`: a short run against the test broker and one on a fresh embedded broker."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from klamm.cli import _common
from tests.cli.cli_helpers import Cli, closed_port, interrupt

SMALL = ["--messages", "2000", "--size", "64", "--latency-samples", "20"]


def test_bench_json_against_a_cluster(cli: Cli) -> None:
    result = cli("bench", *SMALL, "--partitions", "2", "--acks", "1", "-z", "lz4", "--json")
    assert result.code == 0, result.err
    report = result.json()
    for phase in ("produce", "consume"):
        assert report[phase]["messages"] == 2000
        assert report[phase]["msg_per_s"] > 0 and report[phase]["mb_per_s"] > 0
    latency = report["latency"]
    assert latency["samples"] == 20
    assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    # The fresh topic is removed afterwards.
    topics = [t["name"] for t in cli("topics", "list", "--json").json()]
    assert report["topic"] not in topics


def test_bench_table_on_an_existing_topic(cli: Cli, topic: str) -> None:
    cli("produce", topic, stdin=b"already here\n")
    result = cli("bench", *SMALL, "--topic", topic)
    assert result.code == 0, result.err
    for word in ("produce", "consume", "latency", "msg/s", "MB/s", "p50 ms", "p99 ms"):
        assert word in result.out
    # A named topic is the user's: kept, with the bench's records after the existing one.
    assert topic in [t["name"] for t in cli("topics", "list", "--json").json()]


def test_bench_embedded(cli: Cli) -> None:
    result = cli("bench", "--embedded", "--messages", "500", "--latency-samples", "5", "--json")
    assert result.code == 0, result.err
    report = result.json()
    assert report["bootstrap"] == "embedded"
    assert report["consume"]["messages"] == 500 and report["latency"]["samples"] == 5


def test_bench_errors(cli: Cli, unique: str) -> None:
    assert cli("bench", "--messages", "0").code == 2
    assert cli("bench", "--acks", "2").code == 2
    unreachable = cli("bench", *SMALL, bootstrap=closed_port())
    assert unreachable.code == 1 and unreachable.err.startswith("klamm bench: cannot connect")
    missing = cli("bench", *SMALL, "--topic", f"missing-{unique}")
    assert missing.code == 1 and "unknown topic" in missing.err


def test_bench_embedded_leaves_no_temp_files(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = cli("bench", "--embedded", "--messages", "200", "--latency-samples", "2", "--json")
    assert result.code == 0, result.err
    # Neither the data directory nor the broker's log and properties files next to it.
    assert list(tmp_path.iterdir()) == []


def test_bench_ctrl_c_exits_130_without_traceback(tmp_path: Path) -> None:
    # Stuck in the latency phase, where Ctrl-C used to land inside a librdkafka callback and
    # surface as "SystemError: <method 'poll'> returned NULL without setting an exception".
    argv = ["bench", "--embedded", "--messages", "1000", "--latency-samples", "1000000"]
    result = interrupt(argv, after_s=3.0, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert result.code == 130, result.err
    assert "Traceback" not in result.err and "Error" not in result.err
    assert list(tmp_path.iterdir()) == []


def test_bench_table_on_a_narrow_terminal_keeps_every_digit(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_common, "PIPE_WIDTH", 40)  # the console's width: a 40-column terminal
    result = cli("bench", *SMALL)
    assert result.code == 0, result.err
    assert "…" not in result.out
    produce_row = next(line for line in result.out.splitlines() if "produce" in line)
    assert "2000" in produce_row
    for header in ("msg/s", "MB/s", "p50 ms", "p99 ms", "max ms"):
        assert header in result.out
