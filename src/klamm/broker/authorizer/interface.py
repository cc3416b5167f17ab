"""The question every request handler asks before it acts, and the answer without an authorizer.

Handlers ask `ctx.broker.authorizer.authorize(ctx.session, operation, resource_type, name)`
for each resource a request names, as Kafka's KafkaApis asks its Authorizer, and answer with
Kafka's *_AUTHORIZATION_FAILED codes (or leave the resource out) when it says no.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from klamm.broker.authorizer.model import Operation, ResourceType

if TYPE_CHECKING:
    from klamm.broker.context import Session


class Authorizer(Protocol):
    @property
    def enabled(self) -> bool:
        """False when no authorizer is configured: handlers may skip per-resource work."""
        ...

    def authorize(
        self,
        session: Session,
        operation: Operation,
        resource_type: ResourceType,
        name: str,
        audit: str | None = None,
    ) -> bool:
        """May the session's principal, from its host, do `operation` on the resource? A
        refusal is logged (Kafka's authorizer log) when `audit` names the request asking;
        None for checks that only filter what the client is shown."""
        ...

    def authorize_by_resource_type(
        self, session: Session, operation: Operation, resource_type: ResourceType
    ) -> bool:
        """Kafka's Authorizer.authorizeByResourceType: may the principal do `operation` on at
        least one resource of the type (some ALLOW could match, no DENY covers all of them)?
        Kafka uses it for idempotent produce without IDEMPOTENT_WRITE on the cluster."""
        ...


class AllowEverything:
    """No `authorizer.class.name`: every principal may do everything, as in Kafka."""

    enabled = False

    def authorize(
        self,
        session: Session,
        operation: Operation,
        resource_type: ResourceType,
        name: str,
        audit: str | None = None,
    ) -> bool:
        return True

    def authorize_by_resource_type(
        self, session: Session, operation: Operation, resource_type: ResourceType
    ) -> bool:
        return True
