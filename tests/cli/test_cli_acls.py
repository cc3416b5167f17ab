"""`klamm acls add|list|remove` with kafka-acls.sh's vocabulary, against a broker with an
authorizer (its PLAINTEXT connections are User:ANONYMOUS, a super user there)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from klamm.testing import EmbeddedBroker
from tests.cli.cli_helpers import Cli

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


@pytest.fixture(scope="module")
def secured() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(authorizer_class_name=AUTHORIZER, super_users=("User:ANONYMOUS",)) as b:
        yield b


def rows(result: object, key: str) -> set[tuple[str, ...]]:
    data = result.json()[key]  # type: ignore[attr-defined]
    return {
        (r["resource_type"], r["name"], r["pattern_type"], r["principal"], r["host"],
         r["operation"], r["permission"])
        for r in data
    }  # fmt: skip


def test_add_list_remove(cli: Cli, secured: EmbeddedBroker, unique: str) -> None:
    b, who = secured.bootstrap, f"User:alice-{unique}"
    added = cli("acls", "add", "--allow-principal", who, "--operation", "Read",
                "--operation", "describe_configs", "--topic", f"t-{unique}", "--json",
                bootstrap=b)  # fmt: skip
    assert added.code == 0, added.err
    assert rows(added, "created") == {
        ("topic", f"t-{unique}", "literal", who, "*", "Read", "Allow"),
        ("topic", f"t-{unique}", "literal", who, "*", "DescribeConfigs", "Allow"),
    }
    denied = cli("acls", "add", "--deny-principal", who, "--deny-host", "10.0.0.9", "--topic",
                 f"t-{unique}", "--resource-pattern-type", "prefixed", bootstrap=b)  # fmt: skip
    assert denied.code == 0, denied.err
    assert "created 1 ACL" in denied.out and "10.0.0.9" in denied.out and "All" in denied.out
    listed = cli("acls", "list", "--principal", who, "--json", bootstrap=b)
    assert len(rows(listed, "acls")) == 3
    table = cli("acls", "list", "--principal", who, bootstrap=b)
    assert table.code == 0 and "3 ACLs" in table.out and "DescribeConfigs" in table.out
    # match: every pattern that applies to the topic name (the prefix, the literal).
    matched = cli("acls", "list", "--topic", f"t-{unique}-x", "--resource-pattern-type",
                  "match", "--principal", who, "--json", bootstrap=b)  # fmt: skip
    assert rows(matched, "acls") == {
        ("topic", f"t-{unique}", "prefixed", who, "10.0.0.9", "All", "Deny")
    }
    removed = cli("acls", "remove", "--allow-principal", who, "--operation", "Read",
                  "--topic", f"t-{unique}", "--json", bootstrap=b)  # fmt: skip
    assert rows(removed, "removed") == {
        ("topic", f"t-{unique}", "literal", who, "*", "Read", "Allow")
    }
    everything = cli("acls", "remove", "--topic", f"t-{unique}", "--resource-pattern-type",
                     "any", bootstrap=b)  # fmt: skip
    assert everything.code == 0 and "removed 2 ACLs" in everything.out
    assert "no ACLs" in cli("acls", "list", "--principal", who, bootstrap=b).out


def test_producer_and_consumer_shortcuts(cli: Cli, secured: EmbeddedBroker, unique: str) -> None:
    b, app = secured.bootstrap, f"User:app-{unique}"
    producer = cli("acls", "add", "--allow-principal", app, "--producer", "--topic",
                   f"o-{unique}-", "--resource-pattern-type", "prefixed", "--transactional-id",
                   f"tx-{unique}", "--idempotent", "--json", bootstrap=b)  # fmt: skip
    assert producer.code == 0, producer.err
    assert rows(producer, "created") == {
        ("topic", f"o-{unique}-", "prefixed", app, "*", op, "Allow")
        for op in ("Write", "Describe", "Create")
    } | {
        ("transactional-id", f"tx-{unique}", "prefixed", app, "*", op, "Allow")
        for op in ("Write", "Describe")
    } | {("cluster", "kafka-cluster", "literal", app, "*", "IdempotentWrite", "Allow")}
    consumer = cli("acls", "add", "--allow-principal", app, "--consumer", "--topic",
                   f"o-{unique}", "--group", f"g-{unique}", "--json", bootstrap=b)  # fmt: skip
    assert rows(consumer, "created") == {
        ("topic", f"o-{unique}", "literal", app, "*", "Read", "Allow"),
        ("topic", f"o-{unique}", "literal", app, "*", "Describe", "Allow"),
        ("group", f"g-{unique}", "literal", app, "*", "Read", "Allow"),
    }
    for resource in (["--topic", f"o-{unique}-", "--transactional-id", f"tx-{unique}",
                      "--resource-pattern-type", "prefixed"], ["--cluster"],
                     ["--topic", f"o-{unique}", "--group", f"g-{unique}"]):  # fmt: skip
        assert cli("acls", "remove", "--allow-principal", app, *resource, bootstrap=b).code == 0
    assert "no ACLs" in cli("acls", "list", "--principal", app, bootstrap=b).out


A = ["add", "--allow-principal", "User:a"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["add", "--topic", "t"], "add needs --allow-principal or --deny-principal"),
        (["add", "--allow-principal", "alice", "--topic", "t"], "bad principal 'alice'"),
        (A, "add needs a resource"),
        ([*A, "--topic", ""], "resource name cannot be empty"),
        ([*A, "--consumer", "--topic", "t"], "--consumer needs --group"),
        ([*A, "--operation", "Fly", "--topic", "t"], "unknown operation 'Fly'"),
        (["add", "--allow-host", "1.2.3.4", "--deny-principal", "User:a", "--topic", "t"],
         "--allow-host needs --allow-principal"),
        (["remove", "--allow-principal", "User:a"], "remove needs a resource"),
        ([*A, "--topic", "t", "--resource-pattern-type", "match"], "invalid choice"),
    ],
)  # fmt: skip
def test_bad_arguments_exit_2_with_one_line(
    cli: Cli, secured: EmbeddedBroker, argv: list[str], message: str
) -> None:
    result = cli("acls", *argv, bootstrap=secured.bootstrap)
    assert result.code == 2
    assert message in result.err


def test_a_broker_without_an_authorizer_says_so(cli: Cli) -> None:
    result = cli("acls", "add", "--allow-principal", "User:a", "--topic", "t")
    assert result.code == 1
    assert result.err.strip() == "klamm acls: No Authorizer is configured."
    refused = cli("acls", "remove", "--topic", "t")
    assert (refused.code, refused.err.strip()) == (1, "klamm acls: No Authorizer is configured.")
