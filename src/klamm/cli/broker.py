"""`klamm broker`: run a Kafka-compatible broker."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from klamm.broker.auth import MECHANISMS
from klamm.broker.config import (
    AUTHORIZER_CLASSES,
    SECURITY_PROTOCOLS,
    BrokerConfig,
    ConfigFileError,
    config_from_properties,
    parse_properties,
    parse_super_users,
    parse_users,
)
from klamm.cli import logs
from klamm.cli._common import host_port
from klamm.cli.console import add_console_options, console_beside_broker, serve_console

log = logging.getLogger("klamm.cli.broker")


def _listen_address(value: str) -> tuple[str, int]:
    # Port 0: the OS picks a free port (the log line names it).
    return host_port(value, allow_zero=True)


def _address(value: str) -> tuple[str, int]:
    # --advertise and --metrics name a port clients connect to: 0 would mean nothing there.
    return host_port(value)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "broker",
        help="run a Kafka-compatible broker",
        description="Run a Kafka-compatible broker on a durable on-disk log.",
    )
    parser.add_argument(
        "--listen",
        type=_listen_address,
        default=None,
        metavar="HOST:PORT",
        help="address to listen on (default 127.0.0.1:9092)",
    )
    parser.add_argument(
        "--advertise",
        type=_address,
        default=None,
        metavar="HOST:PORT",
        help="address clients are told to connect to (default: --listen)",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="log directory (default ./data)"
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="server.properties-style settings file",
    )
    # Security (klamm.broker.auth). Without --security-protocol, --sasl-user turns SASL on and
    # --ssl-certfile turns TLS on, so `--sasl-user alice:secret` alone does what it says.
    security = parser.add_argument_group("security")
    security.add_argument("--security-protocol", choices=SECURITY_PROTOCOLS, default=None,
                          help="listener protocol (default PLAINTEXT, or inferred from the "
                          "flags below)")  # fmt: skip
    security.add_argument("--sasl-user", action="append", default=[], metavar="NAME:PASSWORD",
                          help="a SASL user (PLAIN and SCRAM); repeat for more")  # fmt: skip
    security.add_argument("--sasl-mechanism", action="append", default=[], metavar="MECHANISM",
                          help="enable only these: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 "
                          "(repeatable; default all three)")  # fmt: skip
    security.add_argument("--ssl-certfile", type=Path, default=None, metavar="PEM",
                          help="TLS certificate chain (SSL / SASL_SSL)")  # fmt: skip
    security.add_argument("--ssl-keyfile", type=Path, default=None, metavar="PEM",
                          help="TLS private key (default: in --ssl-certfile)")  # fmt: skip
    # Authorization (klamm.broker.authorizer): Kafka's StandardAuthorizer and its ACLs.
    authz = parser.add_argument_group("authorization")
    authz.add_argument("--authorizer", action="store_true",
                       help="check every request against ACLs (Kafka's StandardAuthorizer; "
                       "manage them with `klamm acls`). Without ACLs only --super-users may "
                       "do anything")  # fmt: skip
    authz.add_argument("--super-users", default=None, metavar="PRINCIPALS",
                       help="principals allowed everything, ';'-separated "
                       "(User:admin;User:ops), as Kafka's super.users")  # fmt: skip
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])  # fmt: skip
    parser.add_argument("--log-format", default="text", choices=["text", "json"],
                        help="json: one JSON object per line, for log pipelines")  # fmt: skip
    parser.add_argument("--metrics", type=_address, default=None, metavar="HOST:PORT",
                        help="serve Prometheus metrics at http://HOST:PORT/metrics")  # fmt: skip
    parser.add_argument("--schema-registry", type=_listen_address, default=None,
                        metavar="HOST:PORT",
                        help="also serve a Confluent-compatible Schema Registry on HOST:PORT "
                        "(state in this broker's _schemas topic)")  # fmt: skip
    # The web console (klamm.console), served by this process; it reaches the broker over the
    # Kafka protocol like any client. Its login options are `klamm console`'s.
    console = parser.add_argument_group("web console")
    console.add_argument("--console", type=_listen_address, default=None, metavar="HOST:PORT",
                         help="serve the web console at http://HOST:PORT/")  # fmt: skip
    add_console_options(console, prefix="console-")
    parser.set_defaults(func=main)


def build_config(args: argparse.Namespace) -> BrokerConfig:
    config = BrokerConfig()
    if args.config is not None:
        config = config_from_properties(parse_properties(_read_config(args.config)), config)
    changes: dict[str, object] = {}
    if args.listen is not None:
        changes["host"], changes["port"] = args.listen
    if args.advertise is not None:
        changes["advertised_host"], changes["advertised_port"] = args.advertise
    if args.data_dir is not None:
        changes["data_dir"] = args.data_dir
    if args.metrics is not None:
        changes["metrics_host"], changes["metrics_port"] = args.metrics
    changes.update(_security_changes(args, config))
    if getattr(args, "authorizer", False):
        changes["authorizer_class_name"] = AUTHORIZER_CLASSES[0]
    if getattr(args, "super_users", None) is not None:
        changes["super_users"] = parse_super_users(args.super_users)
    config = config.replace(**changes)
    if config.tls_enabled and config.ssl_certfile is None:
        raise ConfigFileError(f"a {config.security_protocol} listener needs --ssl-certfile")
    return config


def _read_config(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigFileError(
            f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
        ) from None
    except OSError as exc:
        raise ConfigFileError(f"cannot read {path}: {exc.strerror or exc}") from None


def _security_changes(args: argparse.Namespace, config: BrokerConfig) -> dict[str, object]:
    changes: dict[str, object] = {}
    if args.sasl_user:
        changes["sasl_users"] = {**config.sasl_users, **parse_users(",".join(args.sasl_user))}
    if args.sasl_mechanism:
        mechanisms = tuple(m.upper() for m in args.sasl_mechanism)
        bad = set(mechanisms) - set(MECHANISMS)
        if bad:
            raise ConfigFileError(f"unsupported SASL mechanism(s): {', '.join(sorted(bad))}")
        changes["sasl_mechanisms"] = mechanisms
    if args.ssl_certfile is not None:
        changes["ssl_certfile"] = args.ssl_certfile
    if args.ssl_keyfile is not None:
        changes["ssl_keyfile"] = args.ssl_keyfile
    if args.security_protocol is not None:
        changes["security_protocol"] = args.security_protocol
    elif config.security_protocol == "PLAINTEXT" and (args.sasl_user or args.ssl_certfile):
        sasl = "SASL_" if args.sasl_user else ""
        changes["security_protocol"] = f"{sasl}SSL" if args.ssl_certfile else f"{sasl}PLAINTEXT"
    return changes


def main(args: argparse.Namespace) -> int:
    """Exit codes: 2 for bad settings, 1 when the broker cannot start or stops on an error, 0
    after a clean shutdown (SIGTERM or Ctrl-C: stopping a server is not a failure). Every
    failure is one line on stderr; --log-level DEBUG adds the traceback of an unexpected one."""
    try:
        logs.configure(args.log_level, args.log_format)
        try:
            config = build_config(args)
        except ValueError as exc:  # ConfigFileError, and a setting BrokerConfig rejects
            return _fail(str(exc), 2)
        problem = _preflight(config) or _preflight_registry(getattr(args, "schema_registry", None))
        if problem is not None:
            return _fail(problem, 1)
        console, problem = console_beside_broker(args)
        if problem is not None:
            return _fail(problem, 2)
        return _run(config, console, getattr(args, "schema_registry", None))
    except KeyboardInterrupt:
        return 130  # before the broker's own SIGINT handling is in place


def _fail(message: str, exit_code: int) -> int:
    print(f"klamm broker: {message}", file=sys.stderr)
    return exit_code


def _preflight(config: BrokerConfig) -> str | None:
    """What would stop the broker from starting, named in the user's terms, checked up front:
    deep in start-up the same problems surface as an SSLError or a failed bind without saying
    which setting caused them."""
    data_dir = Path(config.data_dir)
    if data_dir.is_dir() and not os.access(data_dir, os.R_OK | os.W_OK | os.X_OK):
        return f"cannot use data directory {data_dir}: permission denied"
    if config.tls_enabled and config.ssl_certfile is not None:
        from klamm.broker.auth.tls import server_context

        files = ", ".join(str(f) for f in (config.ssl_certfile, config.ssl_keyfile) if f)
        try:
            server_context(config.ssl_certfile, config.ssl_keyfile, config.ssl_cafile,
                           config.ssl_client_auth)  # fmt: skip
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            return f"cannot load the TLS certificate or key ({files}): {_describe(exc)}"
    if config.metrics_port:
        try:
            # As asyncio.start_server binds it: SO_REUSEADDR, so TIME_WAIT is no conflict.
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((config.metrics_host, config.metrics_port))
        except OSError as exc:
            address = f"{config.metrics_host}:{config.metrics_port}"
            return f"cannot serve metrics on {address}: {_describe(exc)}"
    return None


def _preflight_registry(listen: tuple[str, int] | None) -> str | None:
    if listen is None or listen[1] == 0:
        return None
    try:
        with socket.socket() as probe:  # as uvicorn binds it: SO_REUSEADDR
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(listen)
    except OSError as exc:
        return f"cannot serve the schema registry on {listen[0]}:{listen[1]}: {_describe(exc)}"
    return None


def _run(config: BrokerConfig, console: Any = None, registry: tuple[str, int] | None = None) -> int:
    from klamm.broker.node import StartupError
    from klamm.broker.server import serve

    started = False
    stop = asyncio.Event()
    tasks: list[asyncio.Task[BaseException | None]] = []  # referenced, so never collected

    def on_started(broker: Any) -> None:
        nonlocal started
        started = True
        if console is not None:
            tasks.append(asyncio.create_task(serve_console(broker, console, stop)))

    async def console_stopped() -> None:
        # Set `stop` ended the console's task too (serve_console watches it): wait for it to
        # close its clients while the broker still answers them.
        for task in tasks:
            await task

    async def broker_and_console() -> None:
        try:
            if registry is None:
                await serve(config, stop, on_started=on_started, before_stop=console_stopped)
            else:
                await _serve_with_registry(config, registry, on_started, stop, console_stopped)
        finally:
            stop.set()  # the broker stopped, for whatever reason: so does the console
            for task in tasks:
                await task

    try:
        _run_loop(broker_and_console())
        failure = tasks[0].result() if tasks else None
        if failure is not None:
            return _fail(f"console stopped: {_describe(failure)}", 1)
    except StartupError as exc:
        return _fail(str(exc), 1)
    except Exception as exc:
        log.debug("broker failed", exc_info=True)
        return _fail(f"{'stopped' if started else 'cannot start'}: {_describe(exc)}", 1)
    return 0


async def _serve_with_registry(
    config: BrokerConfig,
    listen: tuple[str, int],
    on_started: Any,
    stop: asyncio.Event,
    before_stop: Callable[[], Awaitable[None]],
) -> None:
    """The broker, and beside it on the same loop a Schema Registry that reaches the broker as any
    client does (klamm.schema imports no broker code). A registry that cannot start stops the
    broker: the operator asked for both."""
    from klamm.broker.server import serve
    from klamm.schema.server import RegistryServer

    servers: list[RegistryServer] = []
    failure: list[BaseException] = []

    async def start_registry(port: int) -> None:
        host = config.host if config.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        server = RegistryServer(f"{host}:{port}", *listen, client_config=_registry_client(config))
        try:
            await server.start()
        except Exception as exc:
            failure.append(exc)
            stop.set()
            return
        servers.append(server)

    tasks: list[asyncio.Task[None]] = []

    def started(broker: Any) -> None:
        on_started(broker)
        tasks.append(asyncio.create_task(start_registry(broker.bound_port)))

    async def stop_beside() -> None:  # while the broker still serves: see serve's before_stop
        for task in tasks:
            task.cancel()
        while servers:
            await servers.pop().stop()
        await before_stop()

    try:
        await serve(config, stop, started, before_stop=stop_beside)
    finally:  # the broker failed (or never started): whatever is still running goes too
        for task in tasks:
            task.cancel()
        while servers:
            await servers.pop().stop()
    if failure:
        raise OSError(f"schema registry: {_describe(failure[0])}")


def _registry_client(config: BrokerConfig) -> dict[str, Any]:
    """librdkafka settings for the in-process registry to reach its own broker's listener."""
    out: dict[str, Any] = {"security.protocol": config.security_protocol}
    if config.tls_enabled:
        out["enable.ssl.certificate.verification"] = False  # our own listener, on this host
    if config.security_protocol.startswith("SASL_") and config.sasl_users:
        user, password = next(iter(config.sasl_users.items()))
        mechanism = "PLAIN" if "PLAIN" in config.sasl_mechanisms else config.sasl_mechanisms[0]
        out.update({"sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password})
    return out


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    # As klamm.broker.server.run: uvloop when installed (an optional accelerator), else asyncio.
    # Run here rather than through run() so that `serve`'s on_started tells a failed start-up
    # from a broker that failed later.
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def _describe(exc: BaseException) -> str:
    """One line for an exception: the OS's words for an OSError, else its type, message and
    where it was raised (an unexpected exception is a bug; the place helps its report)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f": {exc.filename}" if exc.filename else "")
    if isinstance(exc, OSError | ValueError):
        return str(exc) or type(exc).__name__
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"
