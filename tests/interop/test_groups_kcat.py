"""Consumer groups with kcat -G (librdkafka 2.0.2 in Debian's kcat) against klamm."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Producer

pytestmark = pytest.mark.timeout(90)


def produce(bootstrap: str, topic: str, partitions: int, per_partition: int, tag: str) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(partitions * per_partition):
        p.produce(topic, value=f"{tag}{i}".encode(), partition=i % partitions)
    assert p.flush(15) == 0


class KcatMember:
    """One `kcat -G` process printing "partition offset" per message to a file."""

    def __init__(self, kcat: str, bootstrap: str, group: str, topic: str) -> None:
        self.out = Path(tempfile.mkstemp(prefix="kcat-g-")[1])
        self._file = self.out.open("w")
        self.proc = subprocess.Popen(
            [kcat, "-b", bootstrap, "-G", group, topic, "-u", "-q", "-f", "%p %o\\n",
             "-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=6000",
             "-X", "heartbeat.interval.ms=300", "-X", "auto.commit.interval.ms=100",
             "-X", "fetch.wait.max.ms=100"],
            stdout=self._file,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def seen(self) -> set[tuple[int, int]]:
        rows = self.out.read_text().split("\n")
        return {(int(r.split()[0]), int(r.split()[1])) for r in rows if len(r.split()) == 2}

    def stop(self) -> None:
        # SIGTERM: kcat commits its offsets and leaves the group on the way out.
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._file.close()
        self.out.unlink(missing_ok=True)


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_kcat_members_split_partitions_and_resume_from_commits(
    kcat: str, bootstrap: str, topic_factory: Callable[..., str], unique: str
) -> None:
    topic, group = topic_factory(6), f"g-{unique}"
    produce(bootstrap, topic, 6, 5, "a")
    members = [KcatMember(kcat, bootstrap, group, topic) for _ in range(2)]
    try:
        wait_for(lambda: len(members[0].seen() | members[1].seen()) == 30)
        time.sleep(1)  # let a possible second generation settle before judging the split
        parts = [{p for p, _ in m.seen()} for m in members]
        assert all(parts), f"one member got nothing: {parts}"
        assert parts[0] | parts[1] == set(range(6))
        if not parts[0] & parts[1]:  # one generation (both joined in the quiet window): 3+3
            assert len(parts[0]) == len(parts[1]) == 3, parts
    finally:
        for m in members:
            m.stop()
    produce(bootstrap, topic, 6, 1, "b")
    again = KcatMember(kcat, bootstrap, group, topic)
    try:
        wait_for(lambda: len(again.seen()) >= 6)
        time.sleep(0.5)
        assert {o for _, o in again.seen()} == {5}, "resumed from the committed offsets"
    finally:
        again.stop()


def test_kcat_two_groups_each_read_everything(
    kcat: str, bootstrap: str, topic_factory: Callable[..., str], unique: str
) -> None:
    topic = topic_factory(3)
    produce(bootstrap, topic, 3, 4, "x")
    members = [KcatMember(kcat, bootstrap, f"g{i}-{unique}", topic) for i in range(2)]
    try:
        for m in members:
            wait_for(lambda m=m: len(m.seen()) == 12)  # type: ignore[misc]
    finally:
        for m in members:
            m.stop()
