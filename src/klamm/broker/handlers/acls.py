"""DescribeAcls (29), CreateAcls (30), DeleteAcls (31): the ACLs every client's admin API manages
(Kafka's AclApis).

In Kafka's order: the requester needs DESCRIBE on the cluster to describe ACLs and ALTER on the
cluster to create or delete them (CLUSTER_AUTHORIZATION_FAILED for every entry otherwise); then,
without an authorizer (`authorizer.class.name` empty), SECURITY_DISABLED with Kafka's words. An
ACL Kafka would refuse (unknown codes, a CLUSTER resource not named kafka-cluster, an empty name,
a principal not `Type:name`) gets INVALID_REQUEST with Kafka's message, and the others in the
request are still created. Creations and deletions are answered once durable (store.py).

Kafka 4 serves v1-3 (v0 was removed by KIP-896); every client here sends v1 or later.
"""

from __future__ import annotations

from typing import Any

from klamm.broker.authorizer import checks
from klamm.broker.authorizer.acls import AclBinding, AclFilter, code_of
from klamm.broker.authorizer.model import (
    Operation,
    PatternType,
    Permission,
    ResourceType,
)
from klamm.broker.context import RequestContext
from klamm.broker.coordinator_runtime import CoordinatorUnavailable
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode

# Kafka's words (AclApis).
_CREATE_DELETE_DISABLED = "No Authorizer is configured."
_DESCRIBE_DISABLED = "No Authorizer is configured on the broker"
# Kafka's default message for CLUSTER_AUTHORIZATION_FAILED (Errors.java).
_CLUSTER_DENIED = "Cluster authorization failed."


def _storage_failed(exc: CoordinatorUnavailable) -> str:
    return f"the ACLs could not be written: {exc.cause}"


def _filter(entry: Any) -> AclFilter:
    return AclFilter(
        code_of(ResourceType, entry.resource_type_filter), entry.resource_name_filter,
        code_of(PatternType, entry.pattern_type_filter), entry.principal_filter,
        entry.host_filter, code_of(Operation, entry.operation),
        code_of(Permission, entry.permission_type),
    )  # fmt: skip


def _binding(creation: Any) -> AclBinding:
    return AclBinding(
        code_of(ResourceType, creation.resource_type), creation.resource_name,
        code_of(PatternType, creation.resource_pattern_type), creation.principal, creation.host,
        code_of(Operation, creation.operation), code_of(Permission, creation.permission_type),
    )  # fmt: skip


def _binding_fields(acl: AclBinding) -> dict[str, Any]:
    return {
        "resource_type": acl.resource_type, "resource_name": acl.name,
        "pattern_type": acl.pattern_type, "principal": acl.principal, "host": acl.host,
        "operation": acl.operation, "permission_type": acl.permission,
    }  # fmt: skip


async def handle_create_acls(ctx: RequestContext, request: Any) -> Any:
    count = len(request.creations)

    def every(code: ErrorCode, message: str) -> Any:
        results = [{"error_code": code, "error_message": message}] * count
        return ctx.response(throttle_time=0, results=results)

    if not checks.cluster_allowed(ctx, Operation.ALTER):
        return every(ErrorCode.cluster_authorization_failed, _CLUSTER_DENIED)
    store = ctx.broker.acls
    if store is None:
        return every(ErrorCode.security_disabled, _CREATE_DELETE_DISABLED)
    acls = [_binding(c) for c in request.creations]
    try:
        errors = await store.create(acls)
    except CoordinatorUnavailable as exc:
        return every(ErrorCode.kafka_storage_error, _storage_failed(exc))
    results = [
        {"error_code": ErrorCode.none if e is None else ErrorCode.invalid_request,
         "error_message": e}
        for e in errors
    ]  # fmt: skip
    return ctx.response(throttle_time=0, results=results)


def handle_describe_acls(ctx: RequestContext, request: Any) -> Any:
    def error(code: ErrorCode, message: str) -> Any:
        return ctx.response(throttle_time=0, error_code=code, error_message=message, resources=[])

    if not checks.cluster_allowed(ctx, Operation.DESCRIBE):
        return error(ErrorCode.cluster_authorization_failed, _CLUSTER_DENIED)
    store = ctx.broker.acls
    if store is None:
        return error(ErrorCode.security_disabled, _DESCRIBE_DISABLED)
    acl_filter = _filter(request)
    if (
        acl_filter.resource_type == ResourceType.UNKNOWN
        or acl_filter.pattern_type == PatternType.UNKNOWN
        or acl_filter.operation == Operation.UNKNOWN
        or acl_filter.permission == Permission.UNKNOWN
    ):
        # Kafka's DescribeAclsRequest refuses to parse such a filter (and drops the connection);
        # an answer that says why serves the client better.
        return error(ErrorCode.invalid_request, "Filter contain UNKNOWN elements")
    resources: dict[tuple[int, str, int], list[dict[str, Any]]] = {}
    for acl in store.authorizer.acls(acl_filter):
        key = (acl.resource_type, acl.name, acl.pattern_type)
        resources.setdefault(key, []).append({
            "principal": acl.principal, "host": acl.host, "operation": acl.operation,
            "permission_type": acl.permission,
        })  # fmt: skip
    return ctx.response(
        throttle_time=0, error_code=ErrorCode.none, error_message=None,
        resources=[
            {"resource_type": rtype, "resource_name": name, "pattern_type": ptype, "acls": acls}
            for (rtype, name, ptype), acls in resources.items()
        ],
    )  # fmt: skip


async def handle_delete_acls(ctx: RequestContext, request: Any) -> Any:
    count = len(request.filters)

    def every(code: ErrorCode, message: str) -> Any:
        results = [{"error_code": code, "error_message": message, "matching_acls": []}] * count
        return ctx.response(throttle_time=0, filter_results=results)

    if not checks.cluster_allowed(ctx, Operation.ALTER):
        return every(ErrorCode.cluster_authorization_failed, _CLUSTER_DENIED)
    store = ctx.broker.acls
    if store is None:
        return every(ErrorCode.security_disabled, _CREATE_DELETE_DISABLED)
    try:
        deleted = await store.delete([_filter(f) for f in request.filters])
    except CoordinatorUnavailable as exc:
        return every(ErrorCode.kafka_storage_error, _storage_failed(exc))
    results = []
    for error, acls in deleted:
        matching = [
            {"error_code": ErrorCode.none, "error_message": None, **_binding_fields(acl)}
            for acl in acls
        ]
        results.append({
            "error_code": ErrorCode.none if error is None else ErrorCode.invalid_request,
            "error_message": error, "matching_acls": matching,
        })  # fmt: skip
    return ctx.response(throttle_time=0, filter_results=results)


HANDLERS = {
    ApiKey.DESCRIBE_ACLS: handle_describe_acls,
    ApiKey.CREATE_ACLS: handle_create_acls,
    ApiKey.DELETE_ACLS: handle_delete_acls,
}
