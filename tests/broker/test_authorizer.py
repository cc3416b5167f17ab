"""The StandardAuthorizer's decisions, as Kafka's StandardAuthorizerData makes them, and the
ACL filters of DescribeAcls/DeleteAcls, as Kafka's AclBindingFilter matches them.

The hypothesis test holds the indexed authorizer to a naive reference: every ACL checked against
the rules as StandardAuthorizerData's javadoc and findResult state them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klamm.broker.authorizer.acls import AclBinding, AclFilter, creation_error, filter_error
from klamm.broker.authorizer.model import (
    ANONYMOUS,
    CLUSTER_NAME,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)
from klamm.broker.authorizer.standard import StandardAuthorizer, client_host
from klamm.broker.context import Session

TOPIC, GROUP, CLUSTER = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.CLUSTER
LITERAL, PREFIXED = PatternType.LITERAL, PatternType.PREFIXED
ALLOW, DENY = Permission.ALLOW, Permission.DENY
OP = Operation


def acl(
    name: str = "t",
    op: Operation = OP.READ,
    permission: Permission = ALLOW,
    principal: str = "User:alice",
    host: str = "*",
    pattern: PatternType = LITERAL,
    rtype: ResourceType = TOPIC,
) -> AclBinding:
    return AclBinding(rtype, name, pattern, principal, host, op, permission)


def session(principal: str | None = "User:alice", peer: str = "10.0.0.1:51234") -> Session:
    return Session(peer=peer, principal=principal)


def authorizer(*acls: AclBinding, super_users: tuple[str, ...] = (), everyone: bool = False):
    a = StandardAuthorizer(super_users, everyone)
    for binding in acls:
        a.add(binding)
    return a


ALICE = session()


def test_literal_allow_grants_only_its_operation_resource_and_principal() -> None:
    a = authorizer(acl("t", OP.READ))
    assert a.authorize(ALICE, OP.READ, TOPIC, "t")
    assert not a.authorize(ALICE, OP.WRITE, TOPIC, "t")
    assert not a.authorize(ALICE, OP.READ, TOPIC, "t2")
    assert not a.authorize(ALICE, OP.READ, GROUP, "t")
    assert not a.authorize(session("User:bob"), OP.READ, TOPIC, "t")


def test_deny_beats_allow_and_all_matches_every_operation() -> None:
    a = authorizer(acl("t", OP.ALL), acl("t", OP.WRITE, DENY))
    assert a.authorize(ALICE, OP.READ, TOPIC, "t")
    assert a.authorize(ALICE, OP.ALTER_CONFIGS, TOPIC, "t")
    assert not a.authorize(ALICE, OP.WRITE, TOPIC, "t")
    # DENY ALL from a wildcard principal on a prefix beats a literal ALLOW.
    a.add(acl("t", OP.ALL, DENY, principal="User:*", pattern=PREFIXED))
    assert not a.authorize(ALICE, OP.READ, TOPIC, "t")


def test_implied_operations_come_from_allow_only() -> None:
    a = authorizer(acl("t", OP.WRITE), acl("c", OP.ALTER_CONFIGS))
    assert a.authorize(ALICE, OP.DESCRIBE, TOPIC, "t")  # WRITE implies DESCRIBE
    assert a.authorize(ALICE, OP.DESCRIBE_CONFIGS, TOPIC, "c")  # ALTER_CONFIGS implies it
    assert not a.authorize(ALICE, OP.DESCRIBE_CONFIGS, TOPIC, "t")
    assert not a.authorize(ALICE, OP.READ, TOPIC, "t")  # nothing implies READ
    for op in (OP.READ, OP.DELETE, OP.ALTER):
        assert authorizer(acl("x", op)).authorize(ALICE, OP.DESCRIBE, TOPIC, "x")
    # A DENY implies nothing: DENY READ leaves DESCRIBE (implied by an ALLOW WRITE) allowed.
    b = authorizer(acl("t", OP.WRITE), acl("t", OP.READ, DENY))
    assert b.authorize(ALICE, OP.DESCRIBE, TOPIC, "t")
    assert not b.authorize(ALICE, OP.READ, TOPIC, "t")


def test_patterns_literal_wildcard_and_prefixed() -> None:
    a = authorizer(
        acl("*", OP.READ),
        acl("orders-", OP.WRITE, pattern=PREFIXED),
        acl("orders-eu", OP.WRITE, DENY, pattern=PREFIXED),
    )
    assert a.authorize(ALICE, OP.READ, TOPIC, "anything")
    assert a.authorize(ALICE, OP.WRITE, TOPIC, "orders-us")
    assert a.authorize(ALICE, OP.WRITE, TOPIC, "orders-")  # a prefix matches itself
    assert not a.authorize(ALICE, OP.WRITE, TOPIC, "orders-eu-1")
    assert not a.authorize(ALICE, OP.WRITE, TOPIC, "order")
    # A LITERAL ACL is not a prefix: "orders" does not match "orders-us".
    b = authorizer(acl("orders", OP.READ))
    assert not b.authorize(ALICE, OP.READ, TOPIC, "orders-us")
    # A resource literally named "*" is matched by the wildcard.
    assert a.authorize(ALICE, OP.READ, TOPIC, "*")


def test_principals_wildcard_user_and_anonymous() -> None:
    a = authorizer(acl("t", OP.READ, principal="User:*"))
    assert a.authorize(session("User:bob"), OP.READ, TOPIC, "t")
    assert a.authorize(session(None), OP.READ, TOPIC, "t")  # an unauthenticated connection
    # Only User:* is a wildcard; another type's principal must match exactly.
    b = authorizer(acl("t", OP.READ, principal="Group:*"))
    assert not b.authorize(session("User:bob"), OP.READ, TOPIC, "t")
    c = authorizer(acl("t", OP.READ, principal=ANONYMOUS))
    assert c.authorize(session(None), OP.READ, TOPIC, "t")
    assert not c.authorize(ALICE, OP.READ, TOPIC, "t")


def test_hosts_exact_address_or_wildcard() -> None:
    a = authorizer(acl("t", OP.READ, host="10.0.0.1"))
    assert a.authorize(session(peer="10.0.0.1:4000"), OP.READ, TOPIC, "t")
    assert not a.authorize(session(peer="10.0.0.2:4000"), OP.READ, TOPIC, "t")
    assert client_host("::1:5555") == "::1"
    assert authorizer(acl("t", OP.READ, host="::1")).authorize(
        session(peer="::1:5555"), OP.READ, TOPIC, "t"
    )


def test_no_acl_found_is_decided_per_resource() -> None:
    """Kafka denies when some ACL matches the resource but none applies; only when no ACL
    matches it at all does allow.everyone.if.no.acl.found decide."""
    a = authorizer(acl("t", OP.READ, principal="User:bob"), everyone=True)
    assert not a.authorize(ALICE, OP.READ, TOPIC, "t")  # bob's ACL makes t a guarded resource
    assert a.authorize(ALICE, OP.READ, TOPIC, "other")  # nothing matches other: allowed
    assert a.authorize(ALICE, OP.READ, GROUP, "t")  # ACLs of another type do not count
    a.add(acl("o", OP.READ, principal="User:bob", pattern=PREFIXED))
    assert not a.authorize(ALICE, OP.READ, TOPIC, "other")  # now a prefix matches it
    assert not authorizer().authorize(ALICE, OP.READ, TOPIC, "t")  # default false: denied


def test_super_users_may_do_anything_even_when_denied() -> None:
    a = authorizer(acl("t", OP.ALL, DENY, principal="User:*"), super_users=("User:admin",))
    assert a.authorize(session("User:admin"), OP.WRITE, TOPIC, "t")
    assert a.authorize(session("User:admin"), OP.ALTER, CLUSTER, CLUSTER_NAME)
    assert not a.authorize(ALICE, OP.WRITE, TOPIC, "t")


def test_removing_acls_changes_the_decisions_at_once() -> None:
    """Decisions are cached: a change must not leave a stale one behind."""
    allow = acl("t", OP.READ)
    deny = acl("t", OP.READ, DENY, principal="User:*")
    a = authorizer(allow)
    assert a.authorize(ALICE, OP.READ, TOPIC, "t")
    a.add(deny)
    assert not a.authorize(ALICE, OP.READ, TOPIC, "t")
    a.remove(deny)
    assert a.authorize(ALICE, OP.READ, TOPIC, "t")
    a.remove(allow)
    assert not a.authorize(ALICE, OP.READ, TOPIC, "t")
    assert len(a) == 0 and a.acls() == []
    pre = acl("o", OP.READ, pattern=PREFIXED)
    a.add(pre)
    a.remove(pre)
    assert not a.authorize(ALICE, OP.READ, TOPIC, "orders")


# --- authorize_by_resource_type (Kafka's Authorizer.authorizeByResourceType) -------------------


def test_by_resource_type_allows_when_some_resource_is_allowed() -> None:
    by_type = StandardAuthorizer.authorize_by_resource_type
    assert not by_type(authorizer(), ALICE, OP.WRITE, TOPIC)
    assert by_type(authorizer(everyone=True), ALICE, OP.WRITE, TOPIC)
    assert by_type(authorizer(super_users=("User:alice",)), ALICE, OP.WRITE, TOPIC)
    assert by_type(authorizer(acl("t", OP.WRITE)), ALICE, OP.WRITE, TOPIC)
    assert by_type(authorizer(acl("t", OP.ALL)), ALICE, OP.WRITE, TOPIC)
    assert not by_type(authorizer(acl("t", OP.READ)), ALICE, OP.WRITE, TOPIC)
    assert not by_type(authorizer(acl("t", OP.WRITE)), ALICE, OP.WRITE, GROUP)
    assert not by_type(authorizer(acl("t", OP.WRITE, host="10.9.9.9")), ALICE, OP.WRITE, TOPIC)


def test_by_resource_type_denies_what_a_deny_covers() -> None:
    by_type = StandardAuthorizer.authorize_by_resource_type
    # A literal DENY covers its own name only; a prefixed DENY every name it prefixes.
    assert not by_type(
        authorizer(acl("t", OP.WRITE), acl("t", OP.WRITE, DENY)), ALICE, OP.WRITE, TOPIC
    )
    assert by_type(authorizer(acl("t", OP.WRITE), acl("u", OP.WRITE, DENY)), ALICE, OP.WRITE, TOPIC)
    deny_prefix = acl("ab", OP.WRITE, DENY, pattern=PREFIXED)
    assert not by_type(authorizer(acl("abc", OP.WRITE), deny_prefix), ALICE, OP.WRITE, TOPIC)
    assert not by_type(
        authorizer(acl("abc", OP.WRITE, pattern=PREFIXED), deny_prefix), ALICE, OP.WRITE, TOPIC
    )
    assert by_type(
        authorizer(acl("a", OP.WRITE, pattern=PREFIXED), deny_prefix), ALICE, OP.WRITE, TOPIC
    )
    # A wildcard DENY covers everything, even a wildcard ALLOW.
    assert not by_type(
        authorizer(acl("*", OP.WRITE), acl("*", OP.WRITE, DENY, principal="User:*")),
        ALICE, OP.WRITE, TOPIC,
    )  # fmt: skip
    with pytest.raises(ValueError):
        by_type(authorizer(), ALICE, OP.ANY, TOPIC)


# --- filters (DescribeAcls, DeleteAcls) --------------------------------------------------------


def test_filters_match_as_kafkas_acl_binding_filter() -> None:
    lit, star, pre = acl("orders"), acl("*"), acl("ord", pattern=PREFIXED)
    everything = [lit, star, pre, acl("x", rtype=GROUP)]
    a = authorizer(*everything)

    def found(**fields: object) -> set[AclBinding]:
        return set(a.acls(AclFilter(**fields)))  # type: ignore[arg-type]

    assert found() == set(everything)
    assert found(resource_type=TOPIC) == {lit, star, pre}
    # LITERAL/PREFIXED filters name patterns exactly; ANY too, of either type.
    assert found(name="orders", pattern_type=LITERAL) == {lit}
    assert found(name="ord", pattern_type=PREFIXED) == {pre}
    assert found(name="ord", pattern_type=LITERAL) == set()
    assert found(name="orders", pattern_type=PatternType.ANY) == {lit}
    # MATCH: every pattern that applies to a resource of that name.
    assert found(name="orders", pattern_type=PatternType.MATCH) == {lit, star, pre}
    assert found(name="ordinal", pattern_type=PatternType.MATCH) == {star, pre}
    assert found(pattern_type=PatternType.MATCH) == set(everything)
    assert found(pattern_type=PREFIXED) == {pre}
    # Entry fields: exact principal and host; ANY codes match all.
    bob = acl("t", principal="User:bob", host="10.0.0.1", op=OP.WRITE, permission=DENY)
    a.add(bob)
    assert found(principal="User:bob") == {bob}
    assert found(host="10.0.0.1") == {bob}
    assert found(operation=OP.WRITE, permission=DENY) == {bob}
    assert found(operation=OP.WRITE, permission=ALLOW) == set()


def test_creation_and_filter_validation_as_kafka() -> None:
    assert creation_error(acl()) is None
    assert creation_error(acl("x", rtype=CLUSTER)) == (
        "The only valid name for the CLUSTER resource is kafka-cluster"
    )
    assert creation_error(acl(CLUSTER_NAME, OP.ALTER, rtype=CLUSTER)) is None
    assert creation_error(acl("")) == "Invalid empty resource name"
    assert creation_error(acl(rtype=ResourceType.ANY)) == "Invalid resourceType ANY"
    assert creation_error(acl(pattern=PatternType.MATCH)) == "Invalid patternType MATCH"
    assert creation_error(acl(op=OP.ANY)) == "Invalid operation ANY"
    assert creation_error(acl(permission=Permission.UNKNOWN)) == "Invalid permissionType UNKNOWN"
    for bad in ("alice", ""):
        reason = creation_error(acl(principal=bad))
        assert reason is not None and "no colon is present" in reason
    assert creation_error(acl(principal="User:")) is None  # Kafka parses it (an empty name)
    assert filter_error(AclFilter()) is None
    assert filter_error(AclFilter(pattern_type=PatternType.UNKNOWN)) == "Unknown patternFilter."
    assert filter_error(AclFilter(operation=OP.UNKNOWN)) == "Unknown entryFilter."


# --- the indexed authorizer against a naive reference ------------------------------------------

NAMES = ("", "a", "ab", "abc", "b", "*")
PRINCIPALS = ("User:alice", "User:bob", "User:*")
HOSTS = ("*", "10.0.0.1", "10.0.0.2")
OPS = tuple(o for o in Operation if o not in (OP.ANY, OP.UNKNOWN))
IMPLIES = {
    OP.DESCRIBE: {OP.DESCRIBE, OP.READ, OP.WRITE, OP.DELETE, OP.ALTER},
    OP.DESCRIBE_CONFIGS: {OP.DESCRIBE_CONFIGS, OP.ALTER_CONFIGS},
}

acls_strategy = st.builds(
    AclBinding,
    st.sampled_from((TOPIC, GROUP)),
    st.sampled_from(NAMES[1:]),
    st.sampled_from((LITERAL, PREFIXED)),
    st.sampled_from(PRINCIPALS),
    st.sampled_from(HOSTS),
    st.sampled_from(OPS),
    st.sampled_from((ALLOW, DENY)),
)


def reference(
    acls: list[AclBinding], supers: set[str], everyone: bool,
    principal: str, host: str, op: Operation, rtype: ResourceType, name: str,
) -> bool:  # fmt: skip
    if principal in supers:
        return True
    matching = [
        a for a in acls
        if a.resource_type == rtype and (
            (a.pattern_type == LITERAL and a.name in (name, "*"))
            or (a.pattern_type == PREFIXED and name.startswith(a.name))
        )
    ]  # fmt: skip
    applying = [
        a for a in matching
        if a.principal in (principal, "User:*") and a.host in (host, "*") and (
            a.operation in (OP.ALL, op)
            or (a.permission == ALLOW and a.operation in IMPLIES.get(op, ()))
        )
    ]  # fmt: skip
    if any(a.permission == DENY for a in applying):
        return False
    if applying:
        return True
    return everyone if not matching else False


@settings(max_examples=300, deadline=None)
@given(
    acls=st.lists(acls_strategy, max_size=12),
    removed=st.lists(st.integers(min_value=0, max_value=11), max_size=4),
    everyone=st.booleans(),
    super_user=st.booleans(),
    principal=st.sampled_from(("User:alice", "User:bob", None)),
    host=st.sampled_from(HOSTS[1:]),
    op=st.sampled_from(OPS),
    rtype=st.sampled_from((TOPIC, GROUP)),
    name=st.sampled_from((*NAMES[1:], "abcd", "ba")),
)
def test_indexed_authorizer_agrees_with_the_reference(
    acls: list[AclBinding], removed: list[int], everyone: bool, super_user: bool,
    principal: str | None, host: str, op: Operation, rtype: ResourceType, name: str,
) -> None:  # fmt: skip
    supers = {"User:bob"} if super_user else set()
    a = StandardAuthorizer(supers, everyone)
    for binding in acls:
        a.add(binding)
    a.authorize(session(principal, f"{host}:1"), op, rtype, name)  # fill the cache
    kept = list(dict.fromkeys(acls))
    for index in removed:
        if index < len(kept):
            a.remove(kept.pop(index))
    who = principal or ANONYMOUS
    expected = reference(kept, supers, everyone, who, host, op, rtype, name)
    assert a.authorize(session(principal, f"{host}:1"), op, rtype, name) == expected
    assert set(a.acls()) == set(kept)
