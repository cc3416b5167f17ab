"""Confluent Schema Registry's REST API as a Starlette app over `Registry` (service.py).

Bodies and errors are the JSON Confluent's registry sends (docs/schema-registry.md lists every
route); every answer is `application/vnd.schemaregistry.v1+json`. Service calls block (the log is
Kafka), so they run in Starlette's worker threads, never on the event loop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from klamm.schema import errors
from klamm.schema.errors import RegistryError, UnprocessableError
from klamm.schema.formats import SCHEMA_TYPES
from klamm.schema.records import SchemaRecord
from klamm.schema.service import NewSchema, Registry
from klamm.schema.state import SchemaContent

log = logging.getLogger("klamm.schema")

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
# A request body larger than this is refused (413) before it is parsed: the biggest schemas in
# practice are a few hundred KiB; 16 MiB leaves room and bounds what one request can make us hold.
MAX_BODY_BYTES = 16 * 1024 * 1024


class BodyTooLarge(RegistryError):
    status = 413
    error_code = 413


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status_code=status, media_type=MEDIA_TYPE)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


def _version_body(rec: SchemaRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"subject": rec.subject, "version": rec.version, "id": rec.id}
    if rec.schema_type != "AVRO":
        out["schemaType"] = rec.schema_type
    if rec.references:
        out["references"] = [r.to_json() for r in rec.references]
    out["schema"] = rec.schema
    return out


async def _body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise BodyTooLarge(f"Request body over {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(raw or b"{}")
    except ValueError as exc:
        raise UnprocessableError(f"Unrecognized request body: {exc}", 422) from None


def build_app(registry: Registry) -> Starlette:
    """The ASGI app serving `registry`."""
    Handler = Callable[[Request], Awaitable[Response]]

    def call(fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        return run_in_threadpool(fn, *args)

    def schema_id(request: Request) -> int:
        try:
            return int(request.path_params["id"])
        except ValueError:
            raise errors.schema_not_found("Schema not found") from None

    def content(request: Request) -> tuple[int, SchemaContent]:
        sid = schema_id(request)
        found = registry.state.schema(sid)
        if found is None:
            raise errors.schema_not_found(f"Schema {sid} not found")
        return sid, found

    async def root(request: Request) -> Response:
        return _json({})

    async def schema_types(request: Request) -> Response:
        return _json(list(SCHEMA_TYPES))

    async def get_schema(request: Request) -> Response:
        _, found = content(request)
        text = found.schema
        if request.query_params.get("format") == "serialized" and found.schema_type == "PROTOBUF":
            parsed = await call(registry.parsed, found)
            text = parsed.serialized()
        out: dict[str, Any] = {}
        if found.schema_type != "AVRO":
            out["schemaType"] = found.schema_type
        if found.references:
            out["references"] = [r.to_json() for r in found.references]
        out["schema"] = text
        return _json(out)

    async def get_raw_schema(request: Request) -> Response:
        _, found = content(request)
        return Response(found.schema, media_type=MEDIA_TYPE)

    async def schema_subjects(request: Request) -> Response:
        sid, _ = content(request)
        usages = registry.state.usages(sid, _flag(request, "deleted"))
        return _json(sorted({r.subject for r in usages}))

    async def schema_versions(request: Request) -> Response:
        sid, _ = content(request)
        usages = registry.state.usages(sid, _flag(request, "deleted"))
        return _json([{"subject": r.subject, "version": r.version} for r in usages])

    async def subjects(request: Request) -> Response:
        prefix = request.query_params.get("subjectPrefix", "")
        found = registry.state.subjects(_flag(request, "deleted"))
        return _json([s for s in found if s.startswith(prefix)])

    async def subject_versions(request: Request) -> Response:
        subject = request.path_params["subject"]
        found = registry.versions(subject, _flag(request, "deleted"))
        return _json([r.version for r in found])

    async def register(request: Request) -> Response:
        subject = request.path_params["subject"]
        new = NewSchema.from_body(await _body(request))
        sid = await call(registry.register, subject, new, _flag(request, "normalize"))
        return _json({"id": sid})

    async def get_version(request: Request) -> Response:
        p = request.path_params
        rec = registry.version(p["subject"], p["version"], _flag(request, "deleted"))
        return _json(_version_body(rec))

    async def get_version_schema(request: Request) -> Response:
        p = request.path_params
        rec = registry.version(p["subject"], p["version"], _flag(request, "deleted"))
        return Response(rec.schema, media_type=MEDIA_TYPE)

    async def referenced_by(request: Request) -> Response:
        p = request.path_params
        rec = registry.version(p["subject"], p["version"])
        return _json(registry.state.referenced_by(rec.subject, rec.version))

    async def delete_version(request: Request) -> Response:
        p = request.path_params
        version = await call(
            registry.delete_version, p["subject"], p["version"], _flag(request, "permanent")
        )
        return _json(version)

    async def lookup(request: Request) -> Response:
        subject = request.path_params["subject"]
        new = NewSchema.from_body(await _body(request))
        rec = await call(
            registry.lookup, subject, new, _flag(request, "normalize"), _flag(request, "deleted")
        )
        return _json(_version_body(rec))

    async def delete_subject(request: Request) -> Response:
        subject = request.path_params["subject"]
        versions = await call(registry.delete_subject, subject, _flag(request, "permanent"))
        return _json(versions)

    async def get_config(request: Request) -> Response:
        subject = request.path_params.get("subject")
        if subject is not None and not _flag(request, "defaultToGlobal"):
            level = registry.state.config(subject)
            if level is None:
                raise errors.NotFoundError(
                    f"Subject '{subject}' does not have subject-level compatibility configured",
                    errors.SUBJECT_COMPATIBILITY_NOT_CONFIGURED,
                )
            return _json({"compatibilityLevel": level})
        return _json({"compatibilityLevel": registry.compatibility(subject)})

    async def put_config(request: Request) -> Response:
        body = await _body(request)
        level = body.get("compatibility") if isinstance(body, dict) else None
        if isinstance(level, str):
            level = level.upper()
        result = await call(registry.set_compatibility, request.path_params.get("subject"), level)
        return _json({"compatibility": result})

    async def delete_config(request: Request) -> Response:
        old = await call(registry.delete_compatibility, request.path_params.get("subject"))
        return _json({"compatibilityLevel": old})

    async def get_mode(request: Request) -> Response:
        subject = request.path_params.get("subject")
        if subject is not None and not _flag(request, "defaultToGlobal"):
            mode = registry.state.mode(subject)
            if mode is None:
                raise errors.NotFoundError(
                    f"Subject '{subject}' does not have subject-level mode configured",
                    errors.SUBJECT_MODE_NOT_CONFIGURED,
                )
            return _json({"mode": mode})
        return _json({"mode": registry.mode(subject)})

    async def put_mode(request: Request) -> Response:
        body = await _body(request)
        mode = body.get("mode") if isinstance(body, dict) else None
        result = await call(
            registry.set_mode, request.path_params.get("subject"), mode, _flag(request, "force")
        )
        return _json({"mode": result})

    async def delete_mode(request: Request) -> Response:
        old = await call(registry.delete_mode, request.path_params["subject"])
        return _json({"mode": old})

    async def compatibility(request: Request) -> Response:
        p = request.path_params
        new = NewSchema.from_body(await _body(request))
        problems = await call(
            registry.check, p["subject"], p.get("version"), new, _flag(request, "normalize")
        )
        out: dict[str, Any] = {"is_compatible": not problems}
        if _flag(request, "verbose"):
            out["messages"] = problems
        return _json(out)

    def route(path: str, endpoint: Handler, *methods: str) -> Route:
        return Route(path, endpoint, methods=list(methods))

    routes = [
        route("/", root, "GET"),
        route("/schemas/types", schema_types, "GET"),
        route("/schemas/ids/{id}", get_schema, "GET"),
        route("/schemas/ids/{id}/schema", get_raw_schema, "GET"),
        route("/schemas/ids/{id}/subjects", schema_subjects, "GET"),
        route("/schemas/ids/{id}/versions", schema_versions, "GET"),
        route("/subjects", subjects, "GET"),
        route("/subjects/{subject}", lookup, "POST"),
        route("/subjects/{subject}", delete_subject, "DELETE"),
        route("/subjects/{subject}/versions", subject_versions, "GET"),
        route("/subjects/{subject}/versions", register, "POST"),
        route("/subjects/{subject}/versions/{version}", get_version, "GET"),
        route("/subjects/{subject}/versions/{version}", delete_version, "DELETE"),
        route("/subjects/{subject}/versions/{version}/schema", get_version_schema, "GET"),
        route("/subjects/{subject}/versions/{version}/referencedby", referenced_by, "GET"),
        route("/config", get_config, "GET"),
        route("/config", put_config, "PUT"),
        route("/config", delete_config, "DELETE"),
        route("/config/{subject}", get_config, "GET"),
        route("/config/{subject}", put_config, "PUT"),
        route("/config/{subject}", delete_config, "DELETE"),
        route("/mode", get_mode, "GET"),
        route("/mode", put_mode, "PUT"),
        route("/mode/{subject}", get_mode, "GET"),
        route("/mode/{subject}", put_mode, "PUT"),
        route("/mode/{subject}", delete_mode, "DELETE"),
        route("/compatibility/subjects/{subject}/versions", compatibility, "POST"),
        route("/compatibility/subjects/{subject}/versions/{version}", compatibility, "POST"),
    ]

    async def registry_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RegistryError)
        return _json(exc.body(), exc.status)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _json(
            {"error_code": exc.status_code, "message": f"HTTP {exc.status_code} {exc.detail}"},
            exc.status_code,
        )

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("registry request %s %s failed", request.method, request.url.path)
        return _json({"error_code": 50001, "message": f"Error in the backend: {exc!r}"}, 500)

    return Starlette(
        routes=routes,
        exception_handlers={
            RegistryError: registry_error,
            HTTPException: http_error,
            Exception: unexpected,
        },
    )
