"""Admin contract against klamm's broker."""

from __future__ import annotations

import concurrent.futures
import time
from types import SimpleNamespace
from typing import Any

import confluent_kafka
import pytest

from klamm import ConfigError, Kafka, KafkaError, RequestError, ResourceTypes, TopicError
from klamm.client.admin import Admin
from tests.client.client_helpers import FAST_CONSUMER, eventually, wait_until


async def test_topics_lifecycle(kafka: Kafka, unique: str) -> None:
    topic = f"admin-{unique}"
    async with kafka.admin() as admin:
        assert await admin.create_topics(topics=[{"topic": topic, "num_partitions": 3}]) is True
        assert await admin.create_topics(topics=[{"topic": topic, "num_partitions": 3}]) is False
        assert topic in await admin.list_topics()
        md = await admin.fetch_topic_metadata(topics=[topic])
        assert [p["partition_id"] for p in md["topics"][0]["partitions"]] == [0, 1, 2]
        await admin.create_partitions(topic_partitions=[{"topic": topic, "count": 5}])
        md = await admin.fetch_topic_metadata(topics=[topic])
        assert len(md["topics"][0]["partitions"]) == 5
        await admin.delete_topics(topics=[topic])
        await wait_until_async(lambda: admin.list_topics(), lambda names: topic not in names)


async def wait_until_async(probe: Any, ok: Any, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok(await probe()):
        assert time.monotonic() < deadline, "timed out"


async def test_configs(kafka: Kafka, unique: str) -> None:
    topic = f"cfg-{unique}"
    async with kafka.admin() as admin:
        await admin.create_topics(
            topics=[
                {
                    "topic": topic,
                    "num_partitions": 1,
                    "config_entries": [{"name": "retention.ms", "value": "3600000"}],
                }
            ]
        )
        resource = {"type": ResourceTypes.TOPIC, "name": topic, "config_names": ["retention.ms"]}
        described = await admin.describe_configs(resources=[resource])
        [entry] = described["resources"][0]["config_entries"]
        assert (entry["config_name"], entry["config_value"]) == ("retention.ms", "3600000")
        await admin.alter_configs(
            resources=[
                {
                    "type": ResourceTypes.TOPIC,
                    "name": topic,
                    "config_entries": [{"name": "retention.ms", "value": "7200000"}],
                }
            ]
        )
        described = await admin.describe_configs(resources=[resource])
        assert described["resources"][0]["config_entries"][0]["config_value"] == "7200000"


async def test_broker_configs_and_an_unknown_broker_id(kafka: Kafka) -> None:
    """A broker's configs include the topic defaults under their broker names; an id the
    cluster does not have fails at once (librdkafka would wait a minute for that broker)."""
    async with kafka.admin() as admin:
        resource = {"type": ResourceTypes.BROKER, "name": "0", "config_names": ["log.retention.ms"]}
        described = await admin.describe_configs(resources=[resource])
        [entry] = described["resources"][0]["config_entries"]
        assert (entry["config_name"], entry["config_value"]) == ("log.retention.ms", "604800000")
        started = time.monotonic()
        with pytest.raises(ConfigError, match="unknown broker id '7'"):
            await admin.describe_configs(resources=[{"type": ResourceTypes.BROKER, "name": "7"}])
        assert time.monotonic() - started < 5


async def test_offsets_groups_and_lag(kafka: Kafka, unique: str) -> None:
    topic, group = f"off-{unique}", f"g-{unique}"
    async with kafka.admin() as admin:
        await admin.create_topics(topics=[{"topic": topic, "num_partitions": 2}])
        before = int(time.time() * 1000) - 1
        async with kafka.producer() as producer:
            await producer.send(
                topic=topic, messages=[{"value": b"x", "partition": i % 2} for i in range(6)]
            )
        offsets = await admin.fetch_topic_offsets(topic)
        assert offsets == [
            {"partition": 0, "offset": 3, "high": 3, "low": 0},
            {"partition": 1, "offset": 3, "high": 3, "low": 0},
        ]
        by_ts = await admin.fetch_topic_offsets_by_timestamp(topic, before)
        assert by_ts == [{"partition": 0, "offset": 0}, {"partition": 1, "offset": 0}]
        future = await admin.fetch_topic_offsets_by_timestamp(topic, before + 3_600_000)
        assert future == [{"partition": 0, "offset": 3}, {"partition": 1, "offset": 3}]

        assert await admin.fetch_offsets(group_id=group, topics=[topic]) == [
            {
                "topic": topic,
                "partitions": [
                    {"partition": 0, "offset": -1, "metadata": None},
                    {"partition": 1, "offset": -1, "metadata": None},
                ],
            }
        ]
        await admin.set_offsets(
            group_id=group,
            topic=topic,
            partitions=[{"partition": 0, "offset": 1}, {"partition": 1, "offset": 2}],
        )
        lag = await admin.lag(group_id=group, topics=[topic])
        assert [(x["partition"], x["offset"], x["lag"]) for x in lag] == [(0, 1, 2), (1, 2, 1)]
        await admin.reset_offsets(group_id=group, topic=topic, earliest=True)
        fetched = await admin.fetch_offsets(group_id=group, topics=[topic])
        assert [p["offset"] for p in fetched[0]["partitions"]] == [0, 0]
        await admin.reset_offsets(group_id=group, topic=topic)
        fetched = await admin.fetch_offsets(group_id=group, topics=[topic])
        assert [p["offset"] for p in fetched[0]["partitions"]] == [3, 3]

        # A live member shows up in list/describe groups.
        consumer = kafka.consumer(group_id=group, **FAST_CONSUMER)
        async with consumer:
            await consumer.subscribe(topics=[topic])

            async def noop(payload: Any) -> None:
                return None

            await consumer.run(each_message=noop)
            await wait_until(lambda: len(consumer.assignment()) == 2)
            groups = await admin.list_groups()
            assert group in [g["group_id"] for g in groups["groups"]]
            described = await admin.describe_groups(group_ids=[group])
            [member] = described["groups"][0]["members"]
            assert sorted(member["assignment"]) == [(topic, 0), (topic, 1)]
            assert member["member_assignment"] == {topic: [0, 1]}
            assert described["groups"][0]["protocol_type"] == "consumer"
        await admin.delete_groups(group_ids=[group])
        groups = await admin.list_groups()
        assert group not in [g["group_id"] for g in groups["groups"]]


async def test_set_offsets_refused_while_the_group_has_members(kafka: Kafka, unique: str) -> None:
    """KafkaJS throws "The consumer group must have no running instances"; the broker refuses the
    commit per partition (ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID) and that must not be lost."""
    topic, group = f"live-{unique}", f"live-g-{unique}"
    async with kafka.admin() as admin:
        await admin.create_topics(topics=[{"topic": topic, "num_partitions": 1}])
        async with kafka.producer() as producer:
            await producer.send(topic=topic, messages=[{"value": b"x"} for _ in range(5)])
        seen: list[int] = []

        async def handle(payload: Any) -> None:
            seen.append(payload.message.offset)

        consumer = kafka.consumer(group_id=group, **FAST_CONSUMER)
        async with consumer:
            await consumer.subscribe(topics=[topic], from_beginning=True)
            await consumer.run(each_message=handle)
            await wait_until(lambda: len(seen) == 5, what="5 messages")
            committed = [
                {"topic": topic, "partitions": [{"partition": 0, "offset": 5, "metadata": None}]}
            ]
            fetch = lambda: admin.fetch_offsets(group_id=group, topics=[topic])  # noqa: E731
            assert await eventually(fetch, committed) == committed
            with pytest.raises(RequestError, match="no running members"):
                await admin.set_offsets(
                    group_id=group, topic=topic, partitions=[{"partition": 0, "offset": 1}]
                )
            with pytest.raises(RequestError, match="no running members"):
                await admin.reset_offsets(group_id=group, topic=topic, earliest=True)
            assert await fetch() == committed


class _OffsetsWithPartitionError:
    """An admin handle whose OffsetFetch answer carries a per-partition error (klamm's broker only
    sends one under require_stable, which the admin does not ask for)."""

    def list_consumer_group_offsets(self, requests: Any, **_: Any) -> Any:
        [request] = requests
        error = confluent_kafka.KafkaError(confluent_kafka.KafkaError.UNSTABLE_OFFSET_COMMIT)
        tp = SimpleNamespace(topic="orders", partition=0, offset=-1001, error=error)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        future.set_result(confluent_kafka.ConsumerGroupTopicPartitions(request.group_id, [tp]))
        return {request.group_id: future}


async def test_fetch_offsets_raises_a_partition_error() -> None:
    admin = Admin({})
    admin._rd = _OffsetsWithPartitionError()
    with pytest.raises(KafkaError, match=r"orders\[0\].*UNSTABLE_OFFSET_COMMIT") as raised:
        await admin.fetch_offsets(group_id="g")
    assert raised.value.code == confluent_kafka.KafkaError.UNSTABLE_OFFSET_COMMIT


async def test_admin_reads_never_create_topics(kafka: Kafka, unique: str) -> None:
    """KafkaJS's admin sets allowAutoTopicCreation: false; a typo must not create a topic."""
    names = [f"typo{i}-{unique}" for i in range(5)]
    group = f"typo-g-{unique}"
    async with kafka.admin() as admin:
        reads = [
            lambda: admin.fetch_topic_offsets(names[0]),
            lambda: admin.fetch_offsets(group_id=group, topics=[names[1]]),
            lambda: admin.lag(group_id=group, topics=[names[2]]),
            lambda: admin.reset_offsets(group_id=group, topic=names[3]),
            lambda: admin.fetch_topic_offsets_by_timestamp(names[4], 0),
        ]
        for read in reads:
            with pytest.raises(TopicError, match="unknown topic"):
                await read()
        assert not set(names) & set(await admin.list_topics())


async def test_admin_refuses_a_str_for_a_list(kafka: Kafka, unique: str) -> None:
    """A str would be iterated character by character: topics o, r, d, e, s."""
    name = f"str-{unique}"
    async with kafka.admin() as admin:
        await admin.create_topics(topics=[{"topic": name}])
        before = set(await admin.list_topics())
        calls: dict[str, list[Any]] = {
            "topics": [
                lambda: admin.delete_topics(topics=name),
                lambda: admin.fetch_offsets(group_id="g", topics=name),
                lambda: admin.lag(group_id="g", topics=name),
                lambda: admin.fetch_topic_metadata(topics=name),
                lambda: admin.create_topics(topics=name),
            ],
            "group_ids": [
                lambda: admin.describe_groups(group_ids="g"),
                lambda: admin.delete_groups(group_ids="g"),
            ],
            "topic_partitions": [lambda: admin.create_partitions(topic_partitions=name)],
            "resources": [
                lambda: admin.describe_configs(resources=name),
                lambda: admin.alter_configs(resources=name),
            ],
            "partitions": [lambda: admin.set_offsets(group_id="g", topic=name, partitions=name)],
        }
        for arg, calls_of_arg in calls.items():
            for call in calls_of_arg:
                with pytest.raises(ConfigError, match=f"^{arg} must be a list of .*, not a str$"):
                    await call()
        assert set(await admin.list_topics()) == before


async def test_admin_bad_arguments_raise_config_error(kafka: Kafka, unique: str) -> None:
    topic = f"args-{unique}"
    async with kafka.admin() as admin:
        await admin.create_topics(topics=[{"topic": topic}])
        with pytest.raises(ConfigError, match="partitions must not be empty"):
            await admin.set_offsets(group_id="g", topic=topic, partitions=[])
        with pytest.raises(ConfigError, match=r"partitions\[0\]\['offset'\] must be >= 0, got -1"):
            await admin.set_offsets(
                group_id="g", topic=topic, partitions=[{"partition": 0, "offset": -1}]
            )
        with pytest.raises(ConfigError, match=r"partitions\[0\]\['partition'\] must be an int"):
            await admin.set_offsets(
                group_id="g", topic=topic, partitions=[{"partition": "zero", "offset": 1}]
            )
        with pytest.raises(ConfigError, match=r"resources\[0\]\['type'\] .* got 'TOPIC'"):
            await admin.describe_configs(resources=[{"type": "TOPIC", "name": topic}])
        camel = f"camel-{unique}"
        with pytest.raises(ConfigError, match=r"'numPartitions'.*'num_partitions'") as raised:
            await admin.create_topics(topics=[{"topic": camel, "numPartitions": 3}])
        assert "accepted keys: topic, num_partitions, replication_factor, config_entries" in str(
            raised.value
        )
        assert camel not in await admin.list_topics()
        with pytest.raises(ConfigError, match=f"topics names '{topic}' more than once"):
            await admin.delete_topics(topics=[topic, topic])
        assert topic in await admin.list_topics()
