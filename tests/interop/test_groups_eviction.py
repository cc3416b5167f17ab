"""A member that dies without leaving (SIGKILL: no LeaveGroup, no more heartbeats) is evicted
after its session timeout, and its partitions move to the member that is left."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.timeout(90)

SESSION_TIMEOUT_MS = 6000  # the broker's group.min.session.timeout.ms

MEMBER = textwrap.dedent(
    """
    import sys
    from confluent_kafka import Consumer

    consumer = Consumer({
        "bootstrap.servers": sys.argv[1], "group.id": sys.argv[2],
        "session.timeout.ms": int(sys.argv[4]), "heartbeat.interval.ms": 300,
    })
    consumer.subscribe([sys.argv[3]])
    announced = False
    while True:
        consumer.poll(0.05)
        if consumer.assignment() and not announced:
            print("assigned", flush=True)
            announced = True
    """
)


def test_killed_member_is_evicted_and_its_partitions_move(kafka_broker, unique: str) -> None:
    topic, group = f"evict-{unique}", f"evict-g-{unique}"
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
    admin.create_topics([NewTopic(topic, 6, 1)])[topic].result(10)

    doomed = subprocess.Popen(
        [sys.executable, "-c", MEMBER, kafka_broker.bootstrap, group, topic,
         str(SESSION_TIMEOUT_MS)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    survivor = Consumer({
        "bootstrap.servers": kafka_broker.bootstrap, "group.id": group,
        "session.timeout.ms": SESSION_TIMEOUT_MS, "heartbeat.interval.ms": 300,
    })  # fmt: skip
    try:
        assert doomed.stdout is not None
        assert doomed.stdout.readline().strip() == "assigned"
        survivor.subscribe([topic])
        deadline = time.monotonic() + 30
        while len(survivor.assignment()) != 3:
            assert time.monotonic() < deadline, f"no 3+3 split: {survivor.assignment()}"
            survivor.poll(0.05)

        doomed.kill()
        doomed.wait()
        killed_at = time.monotonic()
        while len(survivor.assignment()) != 6:
            assert time.monotonic() - killed_at < 30, "the dead member's partitions never moved"
            survivor.poll(0.05)
        moved_after = time.monotonic() - killed_at
        # Not before the session timeout (it may still have been alive), not long after it.
        assert SESSION_TIMEOUT_MS / 1000 - 1 < moved_after < SESSION_TIMEOUT_MS / 1000 + 10
    finally:
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait()
        if doomed.stdout is not None:
            doomed.stdout.close()
        survivor.close()
