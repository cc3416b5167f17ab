"""The authorizer's refusal log: Kafka's `kafka.authorizer.logger` lines at INFO for what a client
asked for by name and was refused, none for checks that only filter what it is shown, and a
bound on how many lines a refused client in a loop can make the broker write."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from klamm.broker.authorizer.acls import AclBinding
from klamm.broker.authorizer.audit import LINES_PER_SECOND, REPEAT_INTERVAL_S, RefusalLog
from klamm.broker.authorizer.model import Operation, PatternType, Permission, ResourceType
from klamm.broker.authorizer.standard import StandardAuthorizer
from klamm.broker.context import Session
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode
from klamm.testing import EmbeddedBroker
from tests.broker.authz_helpers import authorizing_broker, create_acl, login
from tests.broker.broker_helpers import create_topics, one_record_batch
from tests.broker.wire import Wire

LOGGER = "klamm.authorizer"
USERS = {"admin": "a", "bob": "b"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def _bob() -> Session:
    session = Session(peer="10.0.0.5:41234")
    session.principal = "User:bob"
    return session


def _acl(name: str, permission: Permission, principal: str = "User:bob") -> AclBinding:
    return AclBinding(ResourceType.TOPIC, name, PatternType.LITERAL, principal, "*",
                      Operation.WRITE, permission)  # fmt: skip


def test_a_refusal_is_logged_in_kafkas_words_with_the_rule(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    authorizer = StandardAuthorizer(refusals=RefusalLog(Clock()))
    authorizer.add(_acl("denied", Permission.DENY))
    authorizer.add(_acl("denied", Permission.ALLOW, principal="User:*"))
    authorizer.add(_acl("other", Permission.ALLOW, principal="User:alice"))
    bob = _bob()
    for name in ("denied", "other"):
        assert not authorizer.authorize(bob, Operation.WRITE, ResourceType.TOPIC, name, "Produce")
    assert not authorizer.authorize(bob, Operation.READ, ResourceType.GROUP, "g", "JoinGroup")
    assert _lines(caplog) == [
        "Principal = User:bob is Denied operation = WRITE from host = 10.0.0.5 on resource = "
        "Topic:LITERAL:denied for request = Produce based on rule "
        "MatchingAcl(DENY User:bob from * WRITE on TOPIC:LITERAL:denied)",
        "Principal = User:bob is Denied operation = WRITE from host = 10.0.0.5 on resource = "
        "Topic:LITERAL:other for request = Produce based on rule "
        "DefaultRule(no ALLOW ACL applies)",
        "Principal = User:bob is Denied operation = READ from host = 10.0.0.5 on resource = "
        "Group:LITERAL:g for request = JoinGroup based on rule "
        "DefaultRule(no ACL names the resource; allow.everyone.if.no.acl.found=false)",
    ]


def test_filters_and_allowed_requests_write_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    authorizer = StandardAuthorizer(super_users=("User:admin",), refusals=RefusalLog(Clock()))
    authorizer.add(_acl("mine", Permission.ALLOW))
    assert not authorizer.authorize(_bob(), Operation.WRITE, ResourceType.TOPIC, "x")  # a filter
    assert authorizer.authorize(_bob(), Operation.WRITE, ResourceType.TOPIC, "mine", "Produce")
    admin = Session(peer="10.0.0.6:1")
    admin.principal = "User:admin"
    assert authorizer.authorize(admin, Operation.ALTER, ResourceType.CLUSTER, "c", "CreateAcls")
    assert _lines(caplog) == []


def test_a_refusal_repeated_in_a_loop_is_written_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    clock = Clock()
    authorizer = StandardAuthorizer(refusals=RefusalLog(clock))
    for _ in range(1000):
        authorizer.authorize(_bob(), Operation.WRITE, ResourceType.TOPIC, "t", "Produce")
        clock.now += 0.001  # a thousand requests a second
    assert len(_lines(caplog)) == 1
    clock.now += REPEAT_INTERVAL_S
    authorizer.authorize(_bob(), Operation.WRITE, ResourceType.TOPIC, "t", "Produce")
    lines = _lines(caplog)
    assert len(lines) == 2
    assert lines[1].endswith("(999 more refusals not logged before this one)")


def test_distinct_refusals_are_capped_per_second(caplog: pytest.LogCaptureFixture) -> None:
    """A client naming a new resource in every request cannot make the broker write more than
    LINES_PER_SECOND lines a second."""
    caplog.set_level(logging.INFO, LOGGER)
    clock = Clock()
    authorizer = StandardAuthorizer(refusals=RefusalLog(clock))
    for index in range(LINES_PER_SECOND + 30):
        authorizer.authorize(_bob(), Operation.WRITE, ResourceType.TOPIC, f"t{index}", "Produce")
    assert len(_lines(caplog)) == LINES_PER_SECOND
    clock.now += 1.0
    authorizer.authorize(_bob(), Operation.WRITE, ResourceType.TOPIC, "next", "Produce")
    assert _lines(caplog)[-1].endswith("(30 more refusals not logged before this one)")


def test_nothing_is_built_when_info_is_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    calls = []
    RefusalLog(Clock()).refused(
        "User:bob", "h", Operation.READ, ResourceType.TOPIC, "t", "Fetch",
        lambda: calls.append(1) or "rule",
    )  # fmt: skip
    assert calls == []
    assert _lines(caplog) == []


# --- through the wire ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with authorizing_broker(USERS) as b:
        with Wire(b.bootstrap) as wire:
            login(wire, "admin", USERS["admin"])
            create_topics(wire, "audited", "bobs", partitions=1)
            create_acl(wire, ResourceType.TOPIC, "bobs", "User:bob", Operation.DESCRIBE)
        yield b


def test_a_refused_produce_is_logged_and_a_metadata_listing_is_not(
    broker: EmbeddedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    with Wire(broker.bootstrap) as wire:
        login(wire, "bob", USERS["bob"])
        listing = wire.request(ApiKey.METADATA, 12, topics=None, allow_auto_topic_creation=False,
                               include_topic_authorized_operations=False)  # fmt: skip
        assert [t.name for t in listing.topics] == ["bobs"]  # "audited" filtered out, silently
        assert _lines(caplog) == []
        answer = wire.request(
            ApiKey.PRODUCE, 9, transactional_id=None, acks=-1, timeout=5000,
            topic_data=[{"name": "audited", "partition_data": [
                {"index": 0, "records": one_record_batch()}]}],
        )  # fmt: skip
        code = answer.responses[0].partition_responses[0].error_code
        assert code == ErrorCode.topic_authorization_failed
    (line,) = _lines(caplog)
    assert line.startswith(
        "Principal = User:bob is Denied operation = WRITE from host = 127.0.0.1 on resource = "
        "Topic:LITERAL:audited for request = Produce based on rule DefaultRule("
    )
