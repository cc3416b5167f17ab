"""Parity: Consumer.describe_group(), KafkaJS's consumer.describeGroup()."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from klamm.testing import EmbeddedBroker
from tests.parity.harness import assert_parity
from tests.parity.scenarios import fast_kafka

INTENDED = {
    "protocol": "the assignor's name is librdkafka's",
    "member_keys": "no `member_metadata`",
}


async def describe_scenario(bootstrap: str, topic: str, group: str) -> dict[str, Any]:
    kafka = fast_kafka(bootstrap)
    async with kafka.admin() as admin:
        await admin.create_topics(topics=[{"topic": topic, "num_partitions": 2}])

    async def ignore(payload: Any) -> None:
        pass

    async with kafka.consumer(group_id=group, max_wait_time_ms=100) as consumer:
        await consumer.subscribe(topic=topic)
        await consumer.run(each_message=ignore)
        described = await consumer.describe_group()
    [member] = described["members"]
    return {
        "keys": sorted(described),
        "state": described["state"],
        "protocol": described["protocol"],
        "protocol_type": described["protocol_type"],
        "error_code": described["error_code"],
        "members": len(described["members"]),
        "member_keys": sorted(member),
        "client_id": member["client_id"],
        "client_host": member["client_host"],
        "member_assignment": {"T": sorted(member["member_assignment"][topic])},
    }


async def test_describe_group(
    parity_broker: EmbeddedBroker, kafkajs: Callable[..., Any], names: Callable[[str], str]
) -> None:
    bootstrap = parity_broker.bootstrap
    args = {"brokers": [bootstrap], "topic": names("t"), "group": names("g")}
    js = await asyncio.to_thread(kafkajs, "consumer_describe_group.js", args)
    py = await describe_scenario(bootstrap, names("t"), names("g"))
    assert py["protocol"] == "roundrobin" and "member_metadata" not in py["member_keys"]
    assert_parity(js, py, INTENDED)
