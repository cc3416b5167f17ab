"""The console's pages: a Starlette app rendering Jinja2 templates on the server.

Each page is a plain GET that works without JavaScript; console.js only re-fetches a page to
keep it live, and toggles the value views. Every change to the cluster is a POST checked by
security.Guard (login, CSRF) and refused in read-only mode, then redirected back to a GET
(post/redirect/get), with the outcome carried in the `msg`/`err` query parameters.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from klamm import __version__
from klamm.client import KafkaError

from . import render
from .cluster import Cluster, Page, Record
from .config import ConsoleConfig
from .errors import AUTHORIZATION_FAILURES, ConsoleError, NotAuthorized
from .sampler import Sampler
from .security import CSRF_COOKIE, CSRF_FIELD, SESSION_COOKIE, Guard, new_csrf_token

# A form body larger than this is refused before parsing: the produce form is the largest, and a
# message typed into a browser is far smaller than 1 MiB.
MAX_FORM_BYTES = 1024 * 1024
# Groups shown on the overview, largest lag first.
TOP_GROUPS = 5
# Most partitions one topic may be given from the form: Kafka has no hard limit, but a typo of
# one digit too many should not create ten thousand partitions.
MAX_PARTITIONS = 10_000

# The error page's headings: a refusal for lack of an ACL (403), and any other failure (502).
DENIED = "Not authorized"
FAILED = "Something went wrong"

Handler = Callable[[Request], Awaitable[Response]]


class Console:
    """The app's state: the cluster connection, the sampler task, the template environment."""

    def __init__(self, config: ConsoleConfig) -> None:
        config.check()
        self.config = config
        self.cluster = Cluster(config)
        self.sampler = Sampler(
            self.cluster, interval_s=config.sample_interval_s, history=config.history
        )
        self.guard = Guard(config)
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("klamm.console", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.globals.update(
            json_html=render.json_html,
            fmt_ts=render.fmt_ts,
            fmt_count=render.fmt_count,
            fmt_bytes=render.fmt_bytes,
            header_text=render.header_text,
            shown=render.shown,
            chart=render.chart_svg,
            quote=quote,
            version=__version__,
            read_only=config.read_only,
            login_required=config.login_required,
            # Shown in the header once the cluster has an authorizer in play (a SASL login):
            # what the pages show is what this principal may see.
            principal=self.cluster.principal if config.sasl else None,
            CSRF_FIELD=CSRF_FIELD,
        )
        self._sampler_task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Reach the cluster (raises the client's error when it cannot) and start sampling."""
        await self.cluster.connect()
        self._sampler_task = asyncio.create_task(self.sampler.run(), name="console-sampler")

    async def close(self) -> None:
        if self._sampler_task is not None:
            self._sampler_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler_task
            self._sampler_task = None
        await self.cluster.close()

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        """For an app served by another ASGI server (`create_app`); ConsoleServer opens and
        closes the console itself, so that a cluster it cannot reach is a clear error."""
        await self.open()
        try:
            yield
        finally:
            await self.close()

    # -- plumbing ---------------------------------------------------------------------------

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        csrf = request.cookies.get(CSRF_COOKIE) or new_csrf_token()
        html = self.env.get_template(template).render(
            request=request,
            path=request.url.path,
            csrf=csrf,
            msg=request.query_params.get("msg", ""),
            err=request.query_params.get("err", ""),
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        if request.cookies.get(CSRF_COOKIE) != csrf:
            response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict")
        response.headers["content-security-policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'"
        )
        response.headers["x-content-type-options"] = "nosniff"
        return response

    def view(self, handler: Handler) -> Handler:
        """Login check and error page around a GET handler."""

        async def wrapped(request: Request) -> Response:
            if not self.guard.authenticated(request):
                return RedirectResponse(f"/login?next={quote(request.url.path)}", 303)
            try:
                return await handler(request)
            except NotAuthorized as exc:
                return self.page(request, "error.html", 403, error=str(exc), title=DENIED)
            except (KafkaError, ConsoleError) as exc:
                if isinstance(exc, KafkaError) and exc.code in AUTHORIZATION_FAILURES:
                    error = self.not_authorized(exc)
                    return self.page(request, "error.html", 403, error=error, title=DENIED)
                return self.page(request, "error.html", 502, error=str(exc), title=FAILED)

        return wrapped

    def not_authorized(self, exc: KafkaError) -> str:
        """An authorization refusal no page turned into NotAuthorized (naming the permission):
        the principal and the code, which says the kind of resource."""
        who = self.cluster.principal or "the console's principal"
        return (
            f"Not authorized: the cluster refused {who} "
            f"({AUTHORIZATION_FAILURES[exc.code or 0]}). `klamm acls list --principal {who}` "
            "shows the ACLs it has."
        )

    def action(self, handler: Callable[[Request, dict[str, str]], Awaitable[str]]) -> Handler:
        """Login, read-only and CSRF checks around a POST handler, which returns where to go
        next; an error from the cluster goes back to the referring page as `err`."""

        async def wrapped(request: Request) -> Response:
            if not self.guard.authenticated(request):
                return PlainError("login required", 401)
            if self.config.read_only:
                return PlainError("this console is read-only", 403)
            form = await read_form(request)
            if form is None:
                return PlainError("form too large or not url-encoded", 413)
            if not self.guard.csrf_ok(request, form.get(CSRF_FIELD, "")):
                return PlainError("cross-site request refused (missing or wrong CSRF token)", 403)
            back = safe_path(form.get("back", "/"))
            try:
                target = await handler(request, form)
            except (KafkaError, ConsoleError, ValueError) as exc:
                if isinstance(exc, KafkaError) and exc.code in AUTHORIZATION_FAILURES:
                    return RedirectResponse(with_query(back, err=self.not_authorized(exc)), 303)
                return RedirectResponse(with_query(back, err=str(exc)), 303)
            return RedirectResponse(target, 303)

        return wrapped

    # -- pages ------------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        cluster = await self.cluster.describe()
        topics = await self.cluster.topics()
        groups = await self._groups_with_lag()
        groups.sort(key=lambda g: -(g["lag"] or 0))
        # Counted as users see them: the internal topics (__consumer_offsets, ...) are the
        # cluster's bookkeeping, not data.
        topics = [t for t in topics if not t.internal]
        sizes = await self.cluster.sizes()
        return self.page(
            request,
            "overview.html",
            cluster=cluster,
            topics=topics,
            partitions=sum(len(t.partitions) for t in topics),
            messages=sum(t.messages for t in topics),
            size=None if sizes is None else sum(sizes.get(t.name, 0) for t in topics),
            groups=[g for g in groups if g["lag"]][:TOP_GROUPS],
            group_count=len(groups),
            produce_rates=self.sampler.produce_rates(),
            consume_rates=self.sampler.consume_rates(),
            interval=self.sampler.interval_s,
        )

    async def topics(self, request: Request) -> Response:
        q = request.query_params.get("q", "").strip()
        internal = request.query_params.get("internal") == "1"
        topics = [
            t
            for t in await self.cluster.topics()
            if q.lower() in t.name.lower() and (internal or not t.internal)
        ]
        rates = {t.name: self.sampler.topic_rate(t.name) for t in topics}
        sizes = await self.cluster.sizes()
        return self.page(
            request, "topics.html", topics=topics, q=q, internal=internal, rates=rates,
            sizes=sizes,
        )  # fmt: skip

    async def topic(self, request: Request) -> Response:
        name = request.path_params["name"]
        info = await self.cluster.topic(name)
        configs, configs_error = [], ""
        try:
            configs = await self.cluster.configs(name)
        except NotAuthorized as exc:  # the partitions are still the user's to see
            configs_error = str(exc)
        return self.page(
            request,
            "topic.html",
            topic=info,
            configs=configs,
            configs_error=configs_error,
            rate=self.sampler.topic_rate(name),
            size=(await self.cluster.sizes() or {}).get(name),
            tab="overview",
        )

    async def messages(self, request: Request) -> Response:
        name = request.path_params["name"]
        q = request.query_params
        info = await self.cluster.topic(name)
        partition_text = q.get("partition", "")
        mode = q.get("mode", "newest")
        key_filter, value_filter, header_filter = (
            q.get("key", ""),
            q.get("value", ""),
            q.get("header", ""),
        )
        limit = _bounded_int(q.get("limit", ""), self.config.page_messages, 1, 500)
        error = ""
        page = Page(records=[])
        try:
            parts = {p.partition: p for p in info.partitions}
            if partition_text:
                chosen = [int(partition_text)]
                if chosen[0] not in parts:
                    raise ConsoleError(f"topic {name!r} has no partition {chosen[0]}")
            else:
                chosen = sorted(parts)
            filtered = bool(key_filter or value_filter or header_filter)
            # Newest first: each partition's window ends at its end offset, and together they
            # stay within the scan bound (else the read would stop in the windows' older part).
            scan = self.config.scan_messages
            window = min(scan if filtered else limit, max(1, scan // len(chosen)))
            starts: dict[int, tuple[int, int]] = {}
            from_end = mode == "newest"
            if mode == "newest":
                starts = {
                    p: (max(parts[p].low, parts[p].high - window), parts[p].high) for p in chosen
                }
            elif mode == "oldest":
                starts = {p: (parts[p].low, parts[p].high) for p in chosen}
            elif mode == "offset":
                offset = int(q.get("offset", "0") or 0)
                starts = {
                    p: (min(max(offset, parts[p].low), parts[p].high), parts[p].high)
                    for p in chosen
                }
            elif mode == "timestamp":
                ts = _parse_time(q.get("timestamp", ""))
                found = await self.cluster.offsets_for_time(name, chosen, ts)
                starts = {
                    p: (found[p] if found[p] >= 0 else parts[p].high, parts[p].high) for p in chosen
                }
            else:
                raise ConsoleError(f"unknown mode {mode!r}")
            keep = _keep(key_filter, value_filter, header_filter)
            page = await self.cluster.read(
                name,
                starts,
                keep=keep,
                max_records=limit,
                max_scan=self.config.scan_messages,
                from_end=from_end,
            )
        except (ValueError, render.FilterError, ConsoleError) as exc:
            error = str(exc)
        if q.get("format") == "json":
            body = {
                "topic": name,
                "scanned": page.scanned,
                "truncated": page.truncated,
                "messages": [_record_json(r) for r in page.records],
            }
            return JSONResponse(
                body,
                headers={"content-disposition": f'attachment; filename="{name}-messages.json"'},
            )
        template = "messages_rows.html" if q.get("fragment") == "1" else "messages.html"
        return self.page(
            request,
            template,
            topic=info,
            page=page,
            mode=mode,
            partition=partition_text,
            limit=limit,
            key=key_filter,
            value=value_filter,
            header=header_filter,
            offset=q.get("offset", ""),
            timestamp=q.get("timestamp", ""),
            error=error,
            live=q.get("live") == "1",
            query=urlencode(list(q.items())),
            tab="messages",
            scan_limit=self.config.scan_messages,
        )

    async def groups(self, request: Request) -> Response:
        return self.page(request, "groups.html", groups=await self._groups_with_lag())

    async def _groups_with_lag(self) -> list[dict[str, Any]]:
        # Lag from the sampler's last sample (at most one interval old): asking every group's
        # offsets on every page load would cost two requests per group per view.
        return [
            {**g, "lag": self.sampler.latest_lag(g["group_id"])}
            for g in await self.cluster.group_summaries()
        ]

    async def group(self, request: Request) -> Response:
        gid = request.path_params["group"]
        group = await self.cluster.group(gid)
        topics = sorted(
            {o.topic for o in group.offsets} | {t for m in group.members for t, _ in m.assignment}
        )
        plan = None
        q = request.query_params
        if q.get("topic") and q.get("strategy"):
            try:
                plan = await self.cluster.reset_plan(
                    group, q["topic"], q["strategy"], q.get("value", "")
                )
            except (ConsoleError, KafkaError) as exc:
                return self.page(
                    request,
                    "group.html",
                    group=group,
                    topics=topics,
                    plan=None,
                    history=self.sampler.lag_history(gid),
                    reset=q,
                    reset_error=str(exc),
                )
        return self.page(
            request,
            "group.html",
            group=group,
            topics=topics,
            plan=plan,
            history=self.sampler.lag_history(gid),
            reset=q,
            reset_error="",
        )

    async def transactions(self, request: Request) -> Response:
        return self.page(
            request, "transactions.html", transactions=await self.cluster.transactions()
        )

    async def producers(self, request: Request) -> Response:
        name = request.path_params["name"]
        info = await self.cluster.topic(name)
        return self.page(request, "producers.html", topic=info,
                         producers=await self.cluster.producers(name), tab="producers")  # fmt: skip

    async def acls(self, request: Request) -> Response:
        return self.page(request, "acls.html", acls=await self.cluster.acls())

    async def login(self, request: Request) -> Response:
        if request.method == "POST":
            form = await read_form(request) or {}
            if self.guard.check_credentials(form.get("user", ""), form.get("password", "")):
                response = RedirectResponse(safe_path(form.get("next", "/")), 303)
                response.set_cookie(
                    SESSION_COOKIE, self.guard.session_value(), httponly=True, samesite="strict"
                )
                return response
            return self.page(request, "login.html", 401, next=form.get("next", "/"), failed=True)
        return self.page(
            request, "login.html", next=request.query_params.get("next", "/"), failed=False
        )

    # -- actions ----------------------------------------------------------------------------

    async def create_topic(self, _request: Request, form: dict[str, str]) -> str:
        name = form.get("name", "").strip()
        if not name:
            raise ConsoleError("a topic needs a name")
        partitions = _bounded_int(form.get("partitions", ""), 1, 1, MAX_PARTITIONS)
        replication = _bounded_int(form.get("replication", ""), 1, 1, 32)
        await self.cluster.create_topic(name, partitions, replication)
        return with_query(f"/topics/{quote(name, safe='')}", msg=f"created topic {name}")

    async def delete_topic(self, request: Request, form: dict[str, str]) -> str:
        name = request.path_params["name"]
        if form.get("confirm") != name:
            raise ConsoleError("type the topic's name to confirm its deletion")
        await self.cluster.delete_topic(name)
        return with_query("/topics", msg=f"deleted topic {name}")

    async def add_partitions(self, request: Request, form: dict[str, str]) -> str:
        name = request.path_params["name"]
        total = _bounded_int(form.get("count", ""), 0, 1, MAX_PARTITIONS)
        await self.cluster.add_partitions(name, total)
        return with_query(
            f"/topics/{quote(name, safe='')}", msg=f"{name} now has {total} partitions"
        )

    async def set_config(self, request: Request, form: dict[str, str]) -> str:
        name = request.path_params["name"]
        key = form.get("name", "").strip()
        if not key:
            raise ConsoleError("which config?")
        value = None if form.get("reset") == "1" else form.get("value", "")
        await self.cluster.set_config(name, key, value)
        what = "reset to its default" if value is None else f"set to {value}"
        return with_query(f"/topics/{quote(name, safe='')}", msg=f"{key} {what}")

    async def produce(self, request: Request, form: dict[str, str]) -> str:
        name = request.path_params["name"]
        headers = {}
        for line in form.get("headers", "").splitlines():
            if line.strip():
                hk, sep, hv = line.partition("=")
                if not sep or not hk.strip():
                    raise ConsoleError(f"a header is NAME=VALUE, not {line!r}")
                headers[hk.strip()] = hv.encode()
        partition_text = form.get("partition", "").strip()
        partition = int(partition_text) if partition_text else None
        key = form.get("key", "")
        p, offset = await self.cluster.produce(
            name,
            key=key.encode() if key else None,
            value=form.get("value", "").encode(),
            headers=headers,
            partition=partition,
        )
        return with_query(
            f"/topics/{quote(name, safe='')}/messages",
            msg=f"produced to partition {p} at offset {offset}",
        )

    async def reset_offsets(self, request: Request, form: dict[str, str]) -> str:
        gid = request.path_params["group"]
        group = await self.cluster.group(gid)
        if not group.resettable:
            raise ConsoleError(
                f"offsets of group {gid!r} can only be reset while it is inactive "
                f"(its state is {group.state}; stop its consumers first)"
            )
        plan = await self.cluster.reset_plan(
            group, form.get("topic", ""), form.get("strategy", ""), form.get("value", "")
        )
        await self.cluster.apply_reset(gid, plan)
        return with_query(
            f"/groups/{quote(gid, safe='')}",
            msg=f"reset {len(plan)} partition(s) of {form.get('topic')}",
        )

    def build(self, *, lifespan: bool = True) -> Starlette:
        static = StaticFiles(packages=[("klamm.console", "static")])
        routes = [
            Route("/", self.view(self.overview)),
            Route("/topics", self.view(self.topics)),
            Route("/topics/new", self.action(self.create_topic), methods=["POST"]),
            Route("/topics/{name}", self.view(self.topic)),
            Route("/topics/{name}/messages", self.view(self.messages)),
            Route("/topics/{name}/producers", self.view(self.producers)),
            Route("/transactions", self.view(self.transactions)),
            Route("/acls", self.view(self.acls)),
            Route("/topics/{name}/delete", self.action(self.delete_topic), methods=["POST"]),
            Route("/topics/{name}/partitions", self.action(self.add_partitions), methods=["POST"]),
            Route("/topics/{name}/config", self.action(self.set_config), methods=["POST"]),
            Route("/topics/{name}/produce", self.action(self.produce), methods=["POST"]),
            Route("/groups", self.view(self.groups)),
            # Group ids may hold "/" (topic names cannot): a path parameter takes them whole.
            Route("/groups/{group:path}/reset", self.action(self.reset_offsets), methods=["POST"]),
            Route("/groups/{group:path}", self.view(self.group)),
            Route("/login", self.login, methods=["GET", "POST"]),
            Mount("/static", static, name="static"),
        ]
        return Starlette(routes=routes, lifespan=self.lifespan if lifespan else None)


def create_app(config: ConsoleConfig) -> Starlette:
    return Console(config).build()


def PlainError(text: str, status: int) -> Response:
    return Response(text + "\n", status_code=status, media_type="text/plain")


async def read_form(request: Request) -> dict[str, str] | None:
    """A url-encoded form (what every console form posts), or None when too large or another
    encoding. Parsed here rather than by Starlette, which needs python-multipart for forms."""
    if request.headers.get("content-type", "").split(";")[0].strip() not in (
        "application/x-www-form-urlencoded",
        "",
    ):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return None
    return {k: v[-1] for k, v in parsed.items()}


def safe_path(target: str) -> str:
    """A redirect target within this console: a path, never another site (open redirects)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def with_query(path: str, **params: str) -> str:
    path = safe_path(path)
    base, _, _ = path.partition("?")
    return f"{base}?{urlencode(params)}"


def _bounded_int(text: str, default: int, low: int, high: int) -> int:
    if not text.strip():
        if default < low:
            raise ValueError(f"a number from {low} to {high} is needed")
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not low <= value <= high:
        raise ValueError(f"{value} is not between {low} and {high}")
    return value


def _parse_time(text: str) -> int:
    """Milliseconds since the epoch, or an ISO date-time (UTC unless it says otherwise)."""
    text = text.strip()
    if not text:
        raise ValueError("give a timestamp (milliseconds or 2024-01-31T12:00)")
    if text.isdigit():
        return int(text)
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1000)


def _keep(key: str, value: str, header: str) -> Callable[[Record], bool]:
    if value.startswith("$"):
        render.json_path_get({}, value.partition("=")[0].strip())  # a bad path fails now
    header_name, header_sep, header_value = header.partition("=")

    def keep(r: Record) -> bool:
        if key and (r.key is None or key.encode() not in r.key):
            return False
        if value and not render.value_matches(r.value, value):
            return False
        if header:
            found = [v for k, v in r.headers if k == header_name.strip()]
            if not found:
                return False
            if header_sep and not any((v or b"") == header_value.encode() for v in found):
                return False
        return True

    return keep


def _record_json(r: Record) -> dict[str, Any]:
    def text(data: bytes | None) -> Any:
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(data).decode()}

    return {
        "partition": r.partition,
        "offset": r.offset,
        "timestamp": r.timestamp,
        "key": text(r.key),
        "value": text(r.value),
        "headers": [{"key": k, "value": text(v)} for k, v in r.headers],
    }


__all__ = ["Console", "create_app"]
