"""`klamm bench`: a short run against the test broker and one on a fresh embedded broker."""

from __future__ import annotations

from tests.cli.conftest import Cli, closed_port

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
