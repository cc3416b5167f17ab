"""A shared cluster for the console's authorization tests: a SASL broker with Kafka's
StandardAuthorizer, a super user, and users with some ACLs or none."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import confluent_kafka
from confluent_kafka import admin as rd

from klamm.console import ConsoleConfig
from klamm.testing import EmbeddedBroker
from tests.console.harness import RunningConsole

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
# admin: a super user; carol: Describe on topic orders and Read on the payments* groups; bob:
# no ACLs at all. Each logs in with another mechanism, so the console's wire requests use all.
USERS = {"admin": "admin-pw", "carol": "carol-pw", "bob": "bob-pw"}
MECHANISMS = {"admin": "scram-sha-512", "carol": "scram-sha-256", "bob": "plain"}
TRANSACTIONAL_ID = "payments-1"
# A sampler interval of half a second, as in conftest (the charts fill within a test).
SAMPLE_INTERVAL_S = 0.5


@dataclass
class Secured:
    broker: EmbeddedBroker
    producer: Any  # confluent_kafka.Producer holding TRANSACTIONAL_ID's transaction open


def librdkafka(broker: EmbeddedBroker, user: str) -> dict[str, Any]:
    return {"bootstrap.servers": broker.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": MECHANISMS[user].upper(), "sasl.username": user,
            "sasl.password": USERS[user]}  # fmt: skip


@contextmanager
def secured_cluster(data_dir: Path) -> Iterator[Secured]:
    """Topics `orders` (2 partitions) and `secret`, two ACLs for carol, and an open transaction
    of TRANSACTIONAL_ID on orders-0 (aborted at the end)."""
    with EmbeddedBroker(
        data_dir, security_protocol="SASL_PLAINTEXT", sasl_users=dict(USERS),
        authorizer_class_name=AUTHORIZER, super_users=("User:admin",),
    ) as broker:  # fmt: skip
        admin = rd.AdminClient(librdkafka(broker, "admin"))
        for future in admin.create_topics(
            [rd.NewTopic("orders", 2, 1), rd.NewTopic("secret", 1, 1)]
        ).values():
            future.result(10)
        acls = [
            rd.AclBinding(rd.ResourceType.TOPIC, "orders", rd.ResourcePatternType.LITERAL,
                          "User:carol", "*", rd.AclOperation.DESCRIBE, rd.AclPermissionType.ALLOW),
            rd.AclBinding(rd.ResourceType.GROUP, "payments", rd.ResourcePatternType.PREFIXED,
                          "User:carol", "*", rd.AclOperation.READ, rd.AclPermissionType.ALLOW),
            rd.AclBinding(rd.ResourceType.TOPIC, "secret", rd.ResourcePatternType.LITERAL,
                          "User:carol", "10.0.0.9", rd.AclOperation.ALL, rd.AclPermissionType.DENY),
        ]  # fmt: skip
        for future in admin.create_acls(acls).values():
            future.result(10)
        producer = confluent_kafka.Producer(
            {**librdkafka(broker, "admin"), "transactional.id": TRANSACTIONAL_ID}
        )
        producer.init_transactions(10)
        producer.begin_transaction()
        producer.produce("orders", b"charged", partition=0)
        assert producer.flush(10) == 0
        try:
            yield Secured(broker, producer)
        finally:
            producer.abort_transaction(10)


def console_as(broker: EmbeddedBroker, user: str, **settings: Any) -> RunningConsole:
    """A console logged in to the cluster as `user` (SASL, the user's mechanism)."""
    sasl = {"mechanism": MECHANISMS[user], "username": user, "password": USERS[user]}
    config = ConsoleConfig(host="127.0.0.1", port=0, brokers=broker.bootstrap, sasl=sasl,
                           sample_interval_s=SAMPLE_INTERVAL_S, **settings)  # fmt: skip
    return RunningConsole(config)
