"""`klamm produce` and `klamm consume`: stdin lines in, formatted messages out."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from klamm.cli.main import main
from klamm.testing import EmbeddedBroker
from tests.cli.cli_helpers import Cli, closed_port


def test_produce_summary_and_consume_values(cli: Cli, topic: str) -> None:
    produced = cli("produce", topic, stdin=b"one\ntwo\nthree\n")
    assert produced.code == 0, produced.err
    assert "produced 3 messages" in produced.out and topic in produced.out

    consumed = cli("consume", topic, "-o", "beginning", "-e")
    assert consumed.code == 0, consumed.err
    assert sorted(consumed.out.splitlines()) == ["one", "three", "two"]


def test_keys_headers_partition_and_format(cli: Cli, topic: str) -> None:
    produced = cli(
        "produce", topic, "-K", ":", "-H", "source=cli", "-H", "v=2", "-p", "1", "--json",
        stdin=b"k1:v1\nk2:v:2\nplain",
    )  # fmt: skip
    assert produced.code == 0, produced.err
    summary = produced.json()
    assert summary["messages"] == 3 and summary["partitions"] == {"1": 3}
    assert summary["failed"] == 0

    consumed = cli("consume", topic, "-o", "beginning", "-e", "-f", "%t %p %o %k=%s [%h] %K/%S\\n")
    assert consumed.out.splitlines() == [
        f"{topic} 1 0 k1=v1 [source=cli,v=2] 2/2",
        f"{topic} 1 1 k2=v:2 [source=cli,v=2] 2/3",
        f"{topic} 1 2 =plain [source=cli,v=2] -1/5",  # kcat: -1 for a null key
    ]


def test_consume_json_lines(cli: Cli, topic: str) -> None:
    cli("produce", topic, "-K", "=", "-H", "h=1", "-p", "0", stdin=b"key=value\n")
    consumed = cli("consume", topic, "-o", "beginning", "-e", "--json")
    record = json.loads(consumed.out)
    assert record["key"] == "key" and record["value"] == "value"
    assert record["headers"] == [["h", "1"]]
    assert (record["partition"], record["offset"]) == (0, 0)
    assert record["timestamp"] > 0


def test_consume_offsets_count_and_partition(cli: Cli, topic: str) -> None:
    cli("produce", topic, "-p", "0", stdin=b"a\nb\nc\nd\n")
    cli("produce", topic, "-p", "1", stdin=b"x\n")
    fmt = ["-f", "%p:%s\\n"]
    tail = cli("consume", topic, "-o", "-2", "-e", "-p", "0", *fmt)
    assert tail.out.splitlines() == ["0:c", "0:d"]
    absolute = cli("consume", topic, "-o", "1", "-e", "-p", "0", *fmt)
    assert absolute.out.splitlines() == ["0:b", "0:c", "0:d"]
    counted = cli("consume", topic, "-o", "beginning", "-c", "2", "-p", "0", *fmt)
    assert counted.out.splitlines() == ["0:a", "0:b"]
    at_end = cli("consume", topic, "-o", "end", "-e")
    assert at_end.code == 0 and at_end.out == ""


def test_consume_as_a_group_commits(cli: Cli, topic: str, unique: str) -> None:
    group = f"cli-group-{unique}"
    cli("produce", topic, stdin=b"1\n2\n3\n")
    first = cli("consume", topic, "-g", group, "-o", "beginning", "-e")
    assert first.code == 0, first.err
    assert sorted(first.out.splitlines()) == ["1", "2", "3"]
    cli("produce", topic, stdin=b"4\n")
    # The group resumes from its committed offsets: only the new message.
    second = cli("consume", topic, "-g", group, "-o", "beginning", "-e")
    assert second.out.splitlines() == ["4"]


def test_produce_errors(cli: Cli, topic: str) -> None:
    bad_partition = cli("produce", topic, "-p", "9", stdin=b"x\n")
    assert bad_partition.code == 1
    assert (
        bad_partition.err == f"klamm produce: topic '{topic}' has no partition 9 (partitions 0-1)\n"
    )
    assert cli("produce", topic, "-z", "brotli", stdin=b"x\n").code == 2
    assert cli("produce", topic, "--acks", "2", stdin=b"x\n").code == 2
    unreachable = cli("produce", topic, stdin=b"x\n", bootstrap=closed_port())
    assert unreachable.code == 1 and "cannot connect" in unreachable.err


def test_consume_errors(cli: Cli, topic: str, unique: str) -> None:
    unknown = cli("consume", f"missing-{unique}", "-e")
    assert unknown.code == 1
    assert unknown.err == f"klamm consume: unknown topic 'missing-{unique}'\n"
    assert cli("consume", topic, "-o", "middle").code == 2
    assert cli("consume", topic, "-f", "%q").code == 2
    assert cli("consume", topic, "-g", "g", "-o", "5").code == 2
    assert cli("consume", topic, "-g", "g", "-p", "0").code == 2
    assert cli("consume", topic, "-p", "7", "-e").code == 1


def test_pipeline_as_subprocesses(cli_process: Cli, topic: str) -> None:
    produced = cli_process("produce", topic, "-K", ":", "-z", "gzip", stdin=b"a:1\nb:2\n")
    assert produced.code == 0, produced.err
    consumed = cli_process("consume", topic, "-o", "beginning", "-e", "-f", "%k %s\\n")
    assert consumed.code == 0, consumed.err
    assert sorted(consumed.out.splitlines()) == ["a 1", "b 2"]


def test_ctrl_c_exits_130_without_traceback(
    cli: Cli, kafka_broker: EmbeddedBroker, topic: str
) -> None:
    assert cli("produce", topic, "-p", "0", stdin=b"ready\n").code == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "klamm", "consume", topic, "-b", kafka_broker.bootstrap,
         "-o", "beginning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    # Past start-up, inside the poll loop: it printed the first message (a fixed sleep raced a
    # slow start, when Ctrl-C during the imports is Python's own -SIGINT exit).
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"ready"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 130
    assert b"Traceback" not in err


def test_help_lists_the_operator_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in ("topics", "produce", "consume", "groups", "configs", "bench"):
        assert name in out


def test_produce_skips_empty_lines_like_kcat(cli: Cli, topic: str) -> None:
    produced = cli("produce", topic, "-p", "0", "--json", stdin=b"a\n\nb\n\n")
    assert produced.code == 0, produced.err
    assert produced.json()["messages"] == 2
    consumed = cli("consume", topic, "-o", "beginning", "-e", "-p", "0")
    assert consumed.out.splitlines() == ["a", "b"]


def test_produce_partition_minus_one_means_the_partitioner(cli: Cli, topic: str) -> None:
    produced = cli("produce", topic, "-p", "-1", "-K", ":", "--json", stdin=b"k:v\n")
    assert produced.code == 0, produced.err
    assert produced.json()["messages"] == 1
    assert cli("produce", topic, "-p", "-2", stdin=b"x\n").code == 2


def test_consume_null_value_length_is_minus_one(cli: Cli, topic: str) -> None:
    cli("produce", topic, "-p", "0", "-K", ":", stdin=b"key-only:\n")
    consumed = cli("consume", topic, "-o", "beginning", "-e", "-f", "%K %S\\n")
    # An empty value after the separator is an empty (not null) value; a missing key is null.
    assert consumed.out.splitlines() == ["8 0"]
    cli("produce", topic, "-p", "1", stdin=b"v\n")
    keyless = cli("consume", topic, "-o", "beginning", "-e", "-p", "1", "-f", "%K %S\\n")
    assert keyless.out.splitlines() == ["-1 1"]


def test_consume_json_keeps_repeated_headers_and_marks_binary(cli: Cli, topic: str) -> None:
    produced = cli("produce", topic, "-p", "0", "-H", "a=1", "-H", "a=2", "-H", "b=",
                   stdin=b"\xff\xfebinary\n\\xff\n")  # fmt: skip
    assert produced.code == 0, produced.err
    consumed = cli("consume", topic, "-o", "beginning", "-e", "--json")
    binary, literal = (json.loads(line) for line in consumed.out.splitlines())
    assert binary["headers"] == [["a", "1"], ["a", "2"], ["b", ""]]
    assert binary["key"] is None
    assert binary["value"] == {"base64": "//5iaW5hcnk="}  # b"\xff\xfebinary"
    assert literal["value"] == "\\xff"  # the four characters, unlike the bytes above


def test_consume_reports_a_lost_cluster_once(tmp_path: Path, unique: str) -> None:
    with EmbeddedBroker(tmp_path / "data", mode="subprocess") as broker:
        name = f"lost-{unique}"
        assert main(["topics", "create", name, "-b", broker.bootstrap]) == 0
        consumer = subprocess.Popen(
            [sys.executable, "-m", "klamm", "consume", name, "-b", broker.bootstrap],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            time.sleep(1.5)  # inside the poll loop
            broker.stop()
            time.sleep(4)  # librdkafka retries the connection several times a second meanwhile
        finally:
            consumer.send_signal(signal.SIGINT)
            _, err = consumer.communicate(timeout=20)
    lines = err.decode().splitlines()
    assert consumer.returncode == 130
    assert lines and all(line.startswith("klamm consume: error: ") for line in lines)
    assert any("brokers are down" in line or "transport" in line.lower() for line in lines)
    assert len(lines) <= 3, lines  # once per kind of error, not per reconnect attempt
