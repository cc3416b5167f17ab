"""What the console changes in the cluster, over HTTP: topics, configs, group offsets."""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

import confluent_kafka
import pytest
from confluent_kafka import admin as rd_admin

from klamm.testing import EmbeddedBroker
from tests.console.harness import RunningConsole, Session


def admin(broker: EmbeddedBroker) -> rd_admin.AdminClient:
    return rd_admin.AdminClient({"bootstrap.servers": broker.bootstrap})


def config_row(body: str, name: str) -> list[str]:
    row = re.search(rf'<td class="mono">{re.escape(name)}</td>(.*?)</tr>', body, re.S)
    assert row is not None, name
    return [
        re.sub(r"<[^>]+>", "", c).strip()
        for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    ]


def test_topic_lifecycle_and_configs(
    console: RunningConsole, kafka_broker: EmbeddedBroker, unique: str
) -> None:
    s = Session(console)
    topic = f"life-{unique}"
    assert "msg=created" in s.post("/topics/new", name=topic, partitions="1")
    assert "err=" in s.post("/topics/new", name=topic)  # exists already: said, not hidden
    page = s.get(f"/topics/{topic}").body
    value, source, default = config_row(page, "retention.ms")[:3]
    assert source == "DEFAULT_CONFIG" and value == default

    assert "msg=" in s.post(f"/topics/{topic}/config", name="retention.ms", value="3600000")
    value, source, default = config_row(s.get(f"/topics/{topic}").body, "retention.ms")[:3]
    assert (value, source) == ("3600000", "DYNAMIC_TOPIC_CONFIG")
    assert default and default != "3600000"  # the default is still shown beside the override
    s.post(f"/topics/{topic}/config", name="retention.ms", reset="1")
    assert config_row(s.get(f"/topics/{topic}").body, "retention.ms")[1] == "DEFAULT_CONFIG"
    bad = s.post(f"/topics/{topic}/config", name="retention.ms", value="soon")
    assert "err=" in bad  # the broker's refusal, shown

    s.post(f"/topics/{topic}/partitions", count="3")
    md = admin(kafka_broker).list_topics(topic, timeout=10)
    assert len(md.topics[topic].partitions) == 3
    assert "err=" in s.post(f"/topics/{topic}/partitions", count="2")  # cannot shrink

    refused = s.post(f"/topics/{topic}/delete", confirm="wrong-name")
    assert "confirm" in unquote_plus(refused)
    assert topic in admin(kafka_broker).list_topics(timeout=10).topics
    assert "msg=deleted" in s.post(f"/topics/{topic}/delete", confirm=topic)
    assert topic not in admin(kafka_broker).list_topics(timeout=10).topics


def test_reset_is_refused_while_the_group_is_active(
    console: RunningConsole, kafka_broker: EmbeddedBroker, unique: str
) -> None:
    # A group id with a "/" in it: still one group in the URL.
    topic, group = f"active-{unique}", f"team/active-group-{unique}"
    s = Session(console)
    s.post("/topics/new", name=topic)
    producer = confluent_kafka.Producer({"bootstrap.servers": kafka_broker.bootstrap})
    for i in range(10):
        producer.produce(topic, value=b"%d" % i)
    producer.flush(10)
    consumer = confluent_kafka.Consumer({"bootstrap.servers": kafka_broker.bootstrap,
                                         "group.id": group, "enable.auto.commit": False,
                                         "auto.offset.reset": "earliest"})  # fmt: skip
    try:
        consumer.subscribe([topic])
        while not consumer.assignment():
            consumer.poll(0.2)
        consumer.commit(offsets=[confluent_kafka.TopicPartition(topic, 0, 7)], asynchronous=False)
        where = unquote_plus(s.post(f"/groups/{group}/reset", topic=topic, strategy="earliest"))
        assert "can only be reset while it is inactive" in where
        committed = consumer.committed([confluent_kafka.TopicPartition(topic, 0)], timeout=10)
        assert committed[0].offset == 7
    finally:
        consumer.close()
    where = unquote_plus(s.post(f"/groups/{group}/reset", topic=topic, strategy="offset",
                                value="3"))  # fmt: skip
    assert "msg=reset 1 partition" in where
    lag = re.search(r'id="group-lag">(\d+)<', s.get(f"/groups/{group}").body)
    assert lag is not None and lag.group(1) == "7"


def test_acls_page_without_an_authorizer_says_so(console: RunningConsole) -> None:
    """klamm serves DescribeAcls; without an authorizer it answers SECURITY_DISABLED, which the
    console reads itself (librdkafka drops the code, rd_kafka_DescribeAclsResponse_parse):
    the page says the cluster has no ACLs to show, not that it has none."""
    reply = Session(console).get("/acls")
    assert reply.status == 200
    assert 'id="acls-unavailable"' in reply.body and 'id="acls-table"' not in reply.body


def test_sizes_on_disk_come_from_describe_log_dirs(
    console: RunningConsole, caplog: pytest.LogCaptureFixture
) -> None:
    """klamm serves DescribeLogDirs: the overview shows the size on disk, and no page makes the
    broker warn about an API it does not serve."""
    s = Session(console)
    with caplog.at_level(logging.WARNING):
        for path in ("/", "/topics", "/"):
            reply = s.get(path)
            assert reply.status == 200
        assert 'id="total-size"' in reply.body and "Overview" in reply.body
    assert not [r for r in caplog.records if "unsupported api key 35" in r.getMessage()]
