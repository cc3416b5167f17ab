"""Issue 12 item 7: the admin calls KafkaJS has that klamm lacked, with KafkaJS's results."""

from __future__ import annotations

import pytest

from klamm import DeleteGroupsError, DeleteTopicRecordsError, Kafka, OffsetOutOfRange, RequestError
from klamm.client.acls import AclOperationTypes, AclPermissionTypes, AclResourceTypes


async def test_describe_cluster(kafka: Kafka, kafka_broker: object) -> None:
    async with kafka.admin() as admin:
        cluster = await admin.describe_cluster()
    host, port = kafka_broker.bootstrap.split(":")  # type: ignore[attr-defined]
    assert cluster["brokers"] == [{"node_id": 0, "host": host, "port": int(port)}]
    assert cluster["controller"] == 0
    assert isinstance(cluster["cluster_id"], str) and cluster["cluster_id"]


async def test_delete_topic_records(kafka: Kafka, unique: str) -> None:
    topic = f"dtr-{unique}"
    async with kafka.admin() as admin, kafka.producer() as producer:
        await admin.create_topics(topics=[{"topic": topic, "num_partitions": 2}])
        for partition in (0, 1):
            await producer.send(topic=topic, messages=[{"value": b"x", "partition": partition}] * 4)
        assert (
            await admin.delete_topic_records(
                topic=topic,
                partitions=[{"partition": 0, "offset": 3}, {"partition": 1, "offset": -1}],
            )
            is None
        )
        lows = [(o["partition"], o["low"]) for o in await admin.fetch_topic_offsets(topic)]
        assert lows == [(0, 3), (1, 4)]
        with pytest.raises(DeleteTopicRecordsError) as failed:
            await admin.delete_topic_records(
                topic=topic, partitions=[{"partition": 1, "offset": 99}]
            )
    [partition] = failed.value.partitions
    assert (partition["partition"], partition["offset"]) == (1, 99)
    assert isinstance(partition["error"], OffsetOutOfRange)
    assert failed.value.topic == topic


async def test_fetch_offsets_metadata_and_resolve_offsets(kafka: Kafka, unique: str) -> None:
    topic, group = f"fo-{unique}", f"fo-g-{unique}"
    async with kafka.admin() as admin, kafka.producer() as producer:
        await admin.create_topics(topics=[{"topic": topic, "num_partitions": 2}])
        await producer.send(topic=topic, messages=[{"value": b"x", "partition": 0}] * 3)
        await admin.set_offsets(
            group_id=group,
            topic=topic,
            partitions=[{"partition": 0, "offset": 1, "metadata": "worker-7"}],
        )
        fetched = await admin.fetch_offsets(group_id=group, topics=[topic])
        assert fetched[0]["partitions"] == [
            {"partition": 0, "offset": 1, "metadata": "worker-7"},
            {"partition": 1, "offset": -1, "metadata": None},
        ]
        # KafkaJS's resolveOffsets: nothing committed (-1) becomes the partition's end, and the
        # resolved offsets are committed.
        resolved = await admin.fetch_offsets(group_id=group, topics=[topic], resolve_offsets=True)
        assert [(p["partition"], p["offset"]) for p in resolved[0]["partitions"]] == [
            (0, 1),
            (1, 0),
        ]
        again = await admin.fetch_offsets(group_id=group, topics=[topic])
        assert [p["offset"] for p in again[0]["partitions"]] == [1, 0]


async def test_validate_only_changes_nothing(kafka: Kafka, unique: str) -> None:
    topic = f"vo-{unique}"
    async with kafka.admin() as admin:
        await admin.create_topics(topics=[{"topic": topic, "num_partitions": 1}])
        await admin.create_partitions(
            topic_partitions=[{"topic": topic, "count": 3}], validate_only=True
        )
        metadata = await admin.fetch_topic_metadata(topics=[topic])
        assert len(metadata["topics"][0]["partitions"]) == 1
        change = [{"name": "retention.ms", "value": "1234"}]
        resource = {"type": 2, "name": topic, "config_entries": change}
        await admin.alter_configs(resources=[resource], validate_only=True)
        described = await admin.describe_configs(
            resources=[{"type": 2, "name": topic, "config_names": ["retention.ms"]}]
        )
        [entry] = described["resources"][0]["config_entries"]
        assert entry["config_value"] != "1234"
        assert entry["config_source"] == 5 and entry["config_synonyms"] == []  # DEFAULT_CONFIG
        await admin.alter_configs(resources=[resource])
        described = await admin.describe_configs(
            resources=[{"type": 2, "name": topic, "config_names": ["retention.ms"]}],
            include_synonyms=True,
        )
        [entry] = described["resources"][0]["config_entries"]
    assert (entry["config_value"], entry["config_source"]) == ("1234", 1)  # DYNAMIC_TOPIC_CONFIG
    # librdkafka keys synonyms by name, so levels sharing one name show once: check the shape.
    assert entry["config_synonyms"]
    for synonym in entry["config_synonyms"]:
        assert set(synonym) == {"config_name", "config_value", "config_source"}


async def test_delete_groups_error_lists_every_group(kafka: Kafka, unique: str) -> None:
    topic, group = f"dg-{unique}", f"dg-g-{unique}"
    async with kafka.admin() as admin:
        await admin.create_topics(topics=[{"topic": topic, "num_partitions": 1}])
        await admin.set_offsets(
            group_id=group, topic=topic, partitions=[{"partition": 0, "offset": 0}]
        )
        with pytest.raises(DeleteGroupsError) as failed:
            await admin.delete_groups(group_ids=[group, f"missing-{unique}"])
        assert [(g["group_id"], g["error_code"]) for g in failed.value.groups] == [
            (group, 0),
            (f"missing-{unique}", 69),  # GROUP_ID_NOT_FOUND
        ]


async def test_acl_calls_without_an_authorizer_say_security_is_disabled(kafka: Kafka) -> None:
    """A broker without an authorizer answers the ACL APIs SECURITY_DISABLED, as Kafka does:
    a clear klamm error, not a hang or a raw librdkafka exception (tests/interop/
    test_acls_admin.py covers the calls against a broker with one)."""
    acl = {
        "resource_type": AclResourceTypes.TOPIC,
        "resource_name": "t",
        "resource_pattern_type": 3,  # LITERAL, as a KafkaJS user's number
        "principal": "User:bob",
        "host": "*",
        "operation": AclOperationTypes.READ,
        "permission_type": AclPermissionTypes.ALLOW,
    }
    async with kafka.admin() as admin:
        for call in (
            lambda: admin.create_acls(acl=[acl]),
            lambda: admin.delete_acls(filters=[{"principal": "User:bob"}]),
        ):
            with pytest.raises(RequestError, match="SECURITY_DISABLED"):
                await call()
        # librdkafka drops DescribeAcls' error code (rd_kafka_DescribeAclsResponse_parse): the
        # broker's SECURITY_DISABLED arrives as an empty listing, as it does from Kafka.
        assert await admin.describe_acls(resource_type=AclResourceTypes.TOPIC) == {"resources": []}
