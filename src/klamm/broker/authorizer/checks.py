"""The checks request handlers make, as Kafka's AuthHelper makes them for KafkaApis.

Every handler asks through these functions, never `ctx.broker.authorizer` directly, so the
cost without an authorizer stays one attribute test per request: `denied` returns an empty set
at once, and `allowed` answers True before it builds anything. With an authorizer, `denied`
asks once per distinct name however many partitions name it (Kafka's filterByAuthorized), so
the produce and fetch paths pay per topic, not per partition.

Kafka's answers when no authorizer is configured (AuthHelper.authorizedOperations): every
operation the resource type supports is "authorized", so `*_authorized_operations` carry the
full bit set, not 0 and not the "omitted" INT32_MIN (which means "not asked for").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from klamm.broker.authorizer.model import CLUSTER_NAME, Operation, ResourceType
from klamm.protocol.messages import request_type

if TYPE_CHECKING:
    from klamm.broker.context import RequestContext

# "Authorized operations not requested" in Kafka's responses (the schemas' default).
AUTHORIZED_OPERATIONS_OMITTED = -(2**31)

# The operations an ACL on each resource type may name (Kafka's AclEntry.supportedOperations):
# `authorized_operations` reports these, and no others, for a resource of the type.
SUPPORTED_OPERATIONS: dict[ResourceType, tuple[Operation, ...]] = {
    ResourceType.TOPIC: (
        Operation.READ, Operation.WRITE, Operation.CREATE, Operation.DESCRIBE, Operation.DELETE,
        Operation.ALTER, Operation.DESCRIBE_CONFIGS, Operation.ALTER_CONFIGS,
    ),
    ResourceType.GROUP: (Operation.READ, Operation.DESCRIBE, Operation.DELETE),
    ResourceType.CLUSTER: (
        Operation.CREATE, Operation.CLUSTER_ACTION, Operation.DESCRIBE_CONFIGS,
        Operation.ALTER_CONFIGS, Operation.IDEMPOTENT_WRITE, Operation.ALTER, Operation.DESCRIBE,
    ),
    ResourceType.TRANSACTIONAL_ID: (Operation.DESCRIBE, Operation.WRITE),
    ResourceType.DELEGATION_TOKEN: (Operation.DESCRIBE,),
    ResourceType.USER: (Operation.CREATE_TOKENS, Operation.DESCRIBE_TOKENS),
}  # fmt: skip

# Kafka's default messages for the authorization errors (Errors.java), which clients print.
TOPIC_AUTHORIZATION_FAILED = "Topic authorization failed."
GROUP_AUTHORIZATION_FAILED = "Group authorization failed."
CLUSTER_AUTHORIZATION_FAILED = "Cluster authorization failed."
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = "Transactional Id authorization failed."

_NOTHING: frozenset[str] = frozenset()


def enabled(ctx: RequestContext) -> bool:
    """Is an authorizer configured? Without one every check passes and may be skipped."""
    return ctx.broker.authorizer.enabled


def _audit(ctx: RequestContext, log_denied: bool) -> str | None:
    """The request's name for the authorizer's refusal log (Kafka's ApiKeys name, "Produce"),
    or None: a refusal is not logged (Kafka's logIfDenied=false)."""
    if not log_denied:
        return None
    header = ctx.header
    return str(request_type(header.api_key, header.api_version).__name__).removesuffix("Request")


def allowed(
    ctx: RequestContext,
    operation: Operation,
    resource_type: ResourceType,
    name: str,
    *,
    log_denied: bool = True,
) -> bool:
    """May the request's principal do `operation` on the resource? A refusal is logged unless
    `log_denied` is False (a check that tries a broader permission first)."""
    authorizer = ctx.broker.authorizer
    return not authorizer.enabled or authorizer.authorize(
        ctx.session, operation, resource_type, name, _audit(ctx, log_denied)
    )


def cluster_allowed(ctx: RequestContext, operation: Operation, *, log_denied: bool = True) -> bool:
    """May the request's principal do `operation` on the cluster?"""
    return allowed(ctx, operation, ResourceType.CLUSTER, CLUSTER_NAME, log_denied=log_denied)


def allowed_on_any(ctx: RequestContext, operation: Operation, resource_type: ResourceType) -> bool:
    """Kafka's authorizeByResourceType: may the principal do `operation` on at least one
    resource of the type?"""
    authorizer = ctx.broker.authorizer
    return not authorizer.enabled or authorizer.authorize_by_resource_type(
        ctx.session, operation, resource_type
    )


def denied(
    ctx: RequestContext,
    operation: Operation,
    resource_type: ResourceType,
    names: Iterable[str],
    *,
    log_denied: bool = True,
) -> frozenset[str]:
    """The names among `names` the principal may not `operation`, each asked about once
    (empty, without looking at `names`, when no authorizer is configured). Refusals are
    logged unless `log_denied` is False: a filter of what the client is shown."""
    authorizer = ctx.broker.authorizer
    if not authorizer.enabled:
        return _NOTHING
    session = ctx.session
    audit = _audit(ctx, log_denied)
    return frozenset(
        name
        for name in set(names)
        if not authorizer.authorize(session, operation, resource_type, name, audit)
    )


def authorized_operations(ctx: RequestContext, resource_type: ResourceType, name: str) -> int:
    """Kafka's authorizedOperations: a bit (1 << operation code) for each operation the
    resource type supports that the principal may do; all of them without an authorizer."""
    authorizer = ctx.broker.authorizer
    bits = 0
    for operation in SUPPORTED_OPERATIONS[resource_type]:
        if not authorizer.enabled or authorizer.authorize(
            ctx.session, operation, resource_type, name
        ):
            bits |= 1 << operation
    return bits


def cluster_authorized_operations(ctx: RequestContext) -> int:
    """Metadata's and DescribeCluster's `cluster_authorized_operations` when asked for: 0 for a
    principal who may not DESCRIBE the cluster, else its operations (Kafka's handlers)."""
    if not cluster_allowed(ctx, Operation.DESCRIBE):
        return 0
    return authorized_operations(ctx, ResourceType.CLUSTER, CLUSTER_NAME)
