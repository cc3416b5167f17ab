"""Kafka's StandardAuthorizer: decides from the ACLs in memory who may do what.

The decision (StandardAuthorizerData.authorize in Kafka 4):

1. A super user (`super.users`) may do everything, whatever the ACLs say.
2. The ACLs that apply to a resource are those whose pattern matches its name: the LITERAL one
   with the exact name, the LITERAL `*` wildcard, and every PREFIXED one whose name is a prefix
   of it (the whole name included). Of those, an ACL applies to the request when its principal is
   the session's or `User:*`, its host the client's address or `*`, and its operation the one
   asked, or ALL, or (ALLOW ACLs only) one that implies it: READ, WRITE, DELETE and ALTER imply
   DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS. A DENY ACL implies nothing: DENY READ does
   not deny DESCRIBE.
3. Any applying DENY: denied. Else any applying ALLOW: allowed.
4. Else, if some ACL matches the resource's name at all (whoever and whatever it is for), denied;
   if none does, `allow.everyone.if.no.acl.found` decides (default false: denied).

Lookups are indexed: per resource type, LITERAL patterns by name and PREFIXED ones by name,
probed at each distinct prefix length present (a handful in practice); within a pattern the
ACLs are grouped by principal, so only the session's and `User:*`'s are examined. Decisions are
cached per (principal, host, operation, resource) until the next ACL change: produce and fetch
ask once per topic in every request, and repeat the same questions.

Concurrency: everything runs on the broker's event loop. The ACLs change only through `add` and
`remove`, called by the ACL store (store.py) when it replays its log, so this object holds
exactly what is durable.
"""

from __future__ import annotations

import collections
import functools
import ipaddress
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from klamm.broker.authorizer.acls import AclBinding, AclFilter
from klamm.broker.authorizer.audit import RefusalLog
from klamm.broker.authorizer.model import (
    ANONYMOUS,
    WILDCARD,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)

if TYPE_CHECKING:
    from klamm.broker.context import Session

__all__ = ["WILDCARD_PRINCIPAL", "StandardAuthorizer", "address", "client_host"]

# The principal of an ACL for every user (Kafka's WILDCARD_PRINCIPAL).
WILDCARD_PRINCIPAL = "User:*"
# The operations whose ALLOW implies DESCRIBE, and DESCRIBE_CONFIGS (Kafka's IMPLIES_DESCRIBE,
# IMPLIES_DESCRIBE_CONFIGS).
IMPLIES_DESCRIBE = frozenset(
    (Operation.DESCRIBE, Operation.READ, Operation.WRITE, Operation.DELETE, Operation.ALTER)
)
IMPLIES_DESCRIBE_CONFIGS = frozenset((Operation.DESCRIBE_CONFIGS, Operation.ALTER_CONFIGS))
# Decisions cached at most. A key is ~5 short strings and ints (~0.5 KiB with the dict's
# share), so the cache stays under ~32 MiB; a broker sees far fewer distinct (principal, host,
# operation, resource) questions than this between two ACL changes, and when it does see more,
# the cache starts over rather than grow without bound.
DECISION_CACHE_MAX = 65_536
# Canonical forms of addresses kept (ACL hosts and clients' addresses): a few thousand distinct
# clients and ACL hosts is a large deployment; beyond, the least recently used are parsed again.
HOST_CACHE_MAX = 4096

# pattern name -> principal -> the ACLs of that pattern and principal
_ByName = dict[str, dict[str, list[AclBinding]]]


@functools.lru_cache(maxsize=HOST_CACHE_MAX)
def address(host: str) -> str:
    """An address in one canonical form, so an ACL's host and a client's compare equal however
    they are written: `0:0:0:0:0:0:0:1` (Java's form, which Kafka's ACLs carry) and `::1` are
    one address, and an IPv4 client on a dual-stack socket (`::ffff:10.0.0.1`) is `10.0.0.1`, as
    Java reports it. Anything that is not an IP address (`*`, a host name) stays as written."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def client_host(peer: str) -> str:
    """The client's address as ACL hosts name it: the session's `ip:port` without the port."""
    host = peer.rpartition(":")[0]
    return address(host) if host else peer


class StandardAuthorizer:
    enabled = True

    def __init__(
        self,
        super_users: Iterable[str] = (),
        allow_if_no_acl_found: bool = False,
        refusals: RefusalLog | None = None,
    ):
        self.super_users = frozenset(super_users)
        self.allow_if_no_acl_found = allow_if_no_acl_found
        self._refusals = refusals or RefusalLog()
        self._acls: set[AclBinding] = set()
        self._literal: dict[ResourceType, _ByName] = collections.defaultdict(dict)
        self._prefixed: dict[ResourceType, _ByName] = collections.defaultdict(dict)
        # resource type -> prefix length -> how many PREFIXED patterns have it; and the lengths
        # in ascending order, for the probe.
        self._prefix_counts: dict[ResourceType, collections.Counter[int]] = collections.defaultdict(
            collections.Counter
        )
        self._prefix_lengths: dict[ResourceType, tuple[int, ...]] = {}
        self._decisions: dict[tuple[str, str, Operation, ResourceType, str], bool] = {}

    # --- the ACLs -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._acls)

    def __contains__(self, acl: AclBinding) -> bool:
        return acl in self._acls

    def add(self, acl: AclBinding) -> None:
        if acl in self._acls:
            return
        self._acls.add(acl)
        index = self._index(acl)
        index.setdefault(acl.name, {}).setdefault(acl.principal, []).append(acl)
        if acl.pattern_type == PatternType.PREFIXED:
            counts = self._prefix_counts[acl.resource_type]
            counts[len(acl.name)] += 1
            self._prefix_lengths[acl.resource_type] = tuple(sorted(counts))
        self._decisions.clear()

    def remove(self, acl: AclBinding) -> None:
        if acl not in self._acls:
            return
        self._acls.discard(acl)
        index = self._index(acl)
        by_principal = index[acl.name]
        same = by_principal[acl.principal]
        same.remove(acl)
        if not same:
            del by_principal[acl.principal]
            if not by_principal:
                del index[acl.name]
        if acl.pattern_type == PatternType.PREFIXED:
            counts = self._prefix_counts[acl.resource_type]
            counts[len(acl.name)] -= 1
            if counts[len(acl.name)] == 0:
                del counts[len(acl.name)]
            self._prefix_lengths[acl.resource_type] = tuple(sorted(counts))
        self._decisions.clear()

    def acls(self, acl_filter: AclFilter | None = None) -> list[AclBinding]:
        """The ACLs the filter matches (all without one; Kafka's Authorizer.acls), in a stable
        order."""
        found = [acl for acl in self._acls if acl_filter is None or acl_filter.matches(acl)]
        found.sort(key=_sort_key)
        return found

    def clear_cache(self) -> None:
        """Forget every cached decision (they are recomputed on demand; for benchmarks)."""
        self._decisions.clear()

    def _index(self, acl: AclBinding) -> _ByName:
        if acl.pattern_type == PatternType.PREFIXED:
            return self._prefixed[acl.resource_type]
        return self._literal[acl.resource_type]

    # --- the decisions ------------------------------------------------------------------------

    def authorize(
        self,
        session: Session,
        operation: Operation,
        resource_type: ResourceType,
        name: str,
        audit: str | None = None,
    ) -> bool:
        principal = session.principal or ANONYMOUS
        if principal in self.super_users:
            return True
        host = client_host(session.peer)
        key = (principal, host, operation, resource_type, name)
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._decide(principal, host, operation, resource_type, name)
            if len(self._decisions) >= DECISION_CACHE_MAX:
                self._decisions.clear()
            self._decisions[key] = decision
        if not decision and audit is not None:
            self._refusals.refused(
                principal, host, operation, resource_type, name, audit,
                lambda: self._refusing_rule(principal, host, operation, resource_type, name),
            )  # fmt: skip
        return decision

    def _refusing_rule(
        self, principal: str, host: str, operation: Operation, rtype: ResourceType, name: str
    ) -> str:
        """Why `_decide` refused, for the refusal log: the DENY ACL that applies, or the
        default rule (no ALLOW applies, or no ACL names the resource at all)."""
        found = False
        for by_principal in self._patterns_matching(rtype, name):
            found = True
            for who in (principal, WILDCARD_PRINCIPAL):
                for acl in by_principal.get(who, ()):
                    if acl.permission != Permission.DENY or not _applies(acl, operation):
                        continue
                    if acl.host == WILDCARD or address(acl.host) == host:
                        return f"MatchingAcl({acl.describe()})"
        if found:
            return "DefaultRule(no ALLOW ACL applies)"
        return "DefaultRule(no ACL names the resource; allow.everyone.if.no.acl.found=false)"

    def _decide(
        self, principal: str, host: str, operation: Operation, rtype: ResourceType, name: str
    ) -> bool:
        found = False  # some ACL's pattern matches the resource
        allowed = False
        for by_principal in self._patterns_matching(rtype, name):
            found = True
            for who in (principal, WILDCARD_PRINCIPAL):
                for acl in by_principal.get(who, ()):
                    if acl.host != WILDCARD and address(acl.host) != host:
                        continue
                    if not _applies(acl, operation):
                        continue
                    if acl.permission == Permission.DENY:
                        return False
                    allowed = True
        if allowed:
            return True
        return False if found else self.allow_if_no_acl_found

    def _patterns_matching(
        self, rtype: ResourceType, name: str
    ) -> Iterator[dict[str, list[AclBinding]]]:
        """The ACLs (by principal) of every pattern that matches the resource's name."""
        literal = self._literal.get(rtype)
        if literal:
            exact = literal.get(name)
            if exact is not None:
                yield exact
            if name != WILDCARD:
                wildcard = literal.get(WILDCARD)
                if wildcard is not None:
                    yield wildcard
        prefixed = self._prefixed.get(rtype)
        if prefixed:
            for length in self._prefix_lengths[rtype]:
                if length > len(name):
                    break
                matching = prefixed.get(name[:length])
                if matching is not None:
                    yield matching

    def authorize_by_resource_type(
        self, session: Session, operation: Operation, resource_type: ResourceType
    ) -> bool:
        """Kafka's Authorizer.authorizeByResourceType (its default implementation, which
        StandardAuthorizer keeps): allowed if a resource named "hardcode" would be (so super
        users and `allow.everyone.if.no.acl.found` count), else if some ALLOW of the principal
        (or `User:*`) for the operation (or ALL), from its host (or `*`), is not covered by a
        DENY: a LITERAL `*` DENY covers everything; a LITERAL DENY its own name; a PREFIXED
        DENY every name it is a prefix of. Implied operations do not count here."""
        if operation in (Operation.ANY, Operation.UNKNOWN):
            raise ValueError(f"operation must be a specific one, not {operation.name}")
        if resource_type in (ResourceType.ANY, ResourceType.UNKNOWN):
            raise ValueError(f"resource type must be a specific one, not {resource_type.name}")
        if self.authorize(session, operation, resource_type, "hardcode"):
            return True
        principal = session.principal or ANONYMOUS
        host = client_host(session.peer)
        deny: dict[PatternType, set[str]] = {
            PatternType.LITERAL: set(),
            PatternType.PREFIXED: set(),
        }
        allow: dict[PatternType, set[str]] = {
            PatternType.LITERAL: set(),
            PatternType.PREFIXED: set(),
        }
        for index, pattern_type in (
            (self._literal.get(resource_type, {}), PatternType.LITERAL),
            (self._prefixed.get(resource_type, {}), PatternType.PREFIXED),
        ):
            for name, by_principal in index.items():
                for who in dict.fromkeys((principal, WILDCARD_PRINCIPAL)):
                    for acl in by_principal.get(who, ()):
                        if acl.host != WILDCARD and address(acl.host) != host:
                            continue
                        if acl.operation not in (operation, Operation.ALL):
                            continue
                        if acl.permission == Permission.DENY:
                            if pattern_type == PatternType.LITERAL and name == WILDCARD:
                                return False
                            deny[pattern_type].add(name)
                        else:
                            allow[pattern_type].add(name)
        if WILDCARD in allow[PatternType.LITERAL]:
            return True
        denied_prefixes = deny[PatternType.PREFIXED]
        for pattern_type, names in allow.items():
            for name in names:
                if pattern_type == PatternType.LITERAL and name in deny[PatternType.LITERAL]:
                    continue
                if not any(name[:end] in denied_prefixes for end in range(1, len(name) + 1)):
                    return True
        return False


def _applies(acl: AclBinding, operation: Operation) -> bool:
    """Does the ACL's operation cover the one asked (Kafka's findResult)?"""
    if acl.operation == Operation.ALL or acl.operation == operation:
        return True
    if acl.permission != Permission.ALLOW:
        return False
    if operation == Operation.DESCRIBE:
        return acl.operation in IMPLIES_DESCRIBE
    if operation == Operation.DESCRIBE_CONFIGS:
        return acl.operation in IMPLIES_DESCRIBE_CONFIGS
    return False


def _sort_key(acl: AclBinding) -> tuple[int, str, int, str, str, int, int]:
    return (acl.resource_type, acl.name, acl.pattern_type, acl.principal, acl.host,
            acl.operation, acl.permission)  # fmt: skip
