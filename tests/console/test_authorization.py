"""The console on a shared cluster (SASL and ACLs): logged in as a super user it shows
everything, the raw-protocol parts included (ACLs, transactions, producers, sizes); as a user
with few or no ACLs, each page shows what that user may see, and a refusal is a 403 page (or a
message beside the refused part) naming the missing permission, never a 500 or a trace."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from klamm.console import ConsoleConfig
from klamm.testing import EmbeddedBroker
from tests.console.harness import RunningConsole, Session, http
from tests.console.secured_helpers import TRANSACTIONAL_ID, Secured, console_as
from tests.interop.auth_support import make_certs


@pytest.fixture(scope="module")
def as_admin(secured: Secured) -> Iterator[RunningConsole]:
    console = console_as(secured.broker, "admin")
    yield console
    console.stop()


@pytest.fixture(scope="module")
def as_bob(secured: Secured) -> Iterator[RunningConsole]:
    console = console_as(secured.broker, "bob")
    yield console
    console.stop()


@pytest.fixture(scope="module")
def as_carol(secured: Secured) -> Iterator[RunningConsole]:
    console = console_as(secured.broker, "carol")
    yield console
    console.stop()


def text(body: str) -> str:
    """The page's words, as a reader sees them."""
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", body).split()))


def test_the_super_user_sees_the_acls(as_admin: RunningConsole) -> None:
    reply = http(as_admin.url + "/acls")
    assert reply.status == 200
    rows = re.findall(r"<tr><td>(.*?)</td></tr>", reply.body)
    assert [text(r).split() for r in rows] == [
        ["GROUP", "payments", "PREFIXED", "User:carol", "*", "READ", "ALLOW"],
        ["TOPIC", "orders", "LITERAL", "User:carol", "*", "DESCRIBE", "ALLOW"],
        ["TOPIC", "secret", "LITERAL", "User:carol", "10.0.0.9", "ALL", "DENY"],
    ]
    assert re.search(r'id="principal"[^>]*>User:admin<', reply.body)  # who the console is


def test_the_super_user_sees_transactions_producers_and_sizes(as_admin: RunningConsole) -> None:
    """ListTransactions, DescribeTransactions, DescribeProducers and DescribeLogDirs go through
    klamm.client.wire, logged in with SCRAM-SHA-512."""
    transactions = http(as_admin.url + "/transactions")
    assert transactions.status == 200, text(transactions.body)
    assert TRANSACTIONAL_ID in transactions.body and "Ongoing" in transactions.body
    producers = http(as_admin.url + "/topics/orders/producers")
    assert producers.status == 200, text(producers.body)
    assert re.search(r'class="[^"]*txn-start[^"]*">0<', producers.body)
    topics = http(as_admin.url + "/topics")
    assert "Size" in topics.body and "secret" in topics.body


def test_a_user_without_acls_is_told_what_is_missing(as_bob: RunningConsole) -> None:
    expected = {
        "/acls": "User:bob lacks the Describe permission on the cluster "
        "(CLUSTER_AUTHORIZATION_FAILED). An administrator can grant it with "
        "`klamm acls add --allow-principal User:bob --operation Describe --cluster`.",
        "/topics/orders": "User:bob lacks the Describe permission on topic 'orders' "
        "(TOPIC_AUTHORIZATION_FAILED)",
        "/topics/orders/messages": "lacks the Describe permission on topic 'orders'",
        "/topics/orders/producers": "lacks the Describe permission on topic 'orders'",
        "/groups/payments-1": "User:bob lacks the Describe permission on group 'payments-1' "
        "(GROUP_AUTHORIZATION_FAILED)",
    }
    for path, message in expected.items():
        reply = http(as_bob.url + path)
        assert reply.status == 403, (path, reply.status)
        assert "Not authorized" in text(reply.body) and message in text(reply.body), path
        assert "Traceback" not in reply.body
    # What bob may see: the cluster, and none of its topics, groups or transactions.
    for path in ("/", "/topics", "/groups", "/transactions"):
        reply = http(as_bob.url + path)
        assert reply.status == 200, (path, text(reply.body))
    assert "No topics." in http(as_bob.url + "/topics").body
    assert TRANSACTIONAL_ID not in http(as_bob.url + "/transactions").body
    # No Describe on the cluster: sizes are unknown, not zero.
    assert "Size on disk" not in http(as_bob.url + "/").body


def test_a_user_with_some_acls_sees_their_part(as_carol: RunningConsole) -> None:
    topics = http(as_carol.url + "/topics")
    assert "orders" in topics.body and "secret" not in topics.body
    # The partitions are hers to see; the configs need DescribeConfigs, said in their place.
    topic = http(as_carol.url + "/topics/orders")
    assert topic.status == 200
    assert 'id="partition-count">2<' in topic.body
    configs = re.search(r'id="configs-error">(.*?)</p>', topic.body)
    assert configs is not None
    assert "User:carol lacks the DescribeConfigs permission on topic 'orders'" in text(
        configs.group(1)
    )
    producers = http(as_carol.url + "/topics/orders/producers")
    assert producers.status == 403
    assert "lacks the Read permission on topic 'orders'" in text(producers.body)
    assert http(as_carol.url + "/groups/payments-1").status == 200  # Read implies Describe
    # Reading orders-0 (which holds the open transaction's record) needs Read: said in place.
    messages = http(as_carol.url + "/topics/orders/messages?partition=0&mode=oldest")
    assert messages.status == 200
    assert "User:carol lacks the Read permission on topic 'orders'" in text(messages.body)


def test_a_refused_action_names_the_permission(as_carol: RunningConsole) -> None:
    where = Session(as_carol).post("/topics/new", name="carols", partitions="1",
                                   replication="1", back="/topics")  # fmt: skip
    assert "err=" in where
    assert where.startswith("/topics?")
    page = Session(as_carol).get(where)
    assert "lacks the Create permission on topic 'carols'" in text(page.body)


@pytest.mark.parametrize("verify", [True, False], ids=["ca-file", "unverified"])
def test_over_sasl_ssl(tmp_path: Path, verify: bool) -> None:
    """The console's own requests use its TLS settings too: the CA it trusts, or (as beside a
    broker, `reject_unauthorized: False`) none."""
    certs = make_certs(tmp_path)
    with EmbeddedBroker(
        tmp_path / "data", security_protocol="SASL_SSL", sasl_users={"ops": "ops-pw"},
        ssl_certfile=certs.cert, ssl_keyfile=certs.key,
    ) as broker:  # fmt: skip
        ssl = {"ca_location": str(certs.ca)} if verify else {"reject_unauthorized": False}
        console = RunningConsole(ConsoleConfig(
            host="127.0.0.1", port=0, brokers=broker.bootstrap, ssl=ssl,
            sasl={"mechanism": "scram-sha-512", "username": "ops", "password": "ops-pw"},
        ))  # fmt: skip
        try:
            transactions = http(console.url + "/transactions")
            assert transactions.status == 200, text(transactions.body)
            assert "No transactional producers." in transactions.body
            assert 'id="acls-unavailable"' in http(console.url + "/acls").body
            assert "Size on disk" in http(console.url + "/").body
        finally:
            console.stop()
