"""`klamm console`: the web console against any Kafka cluster.

    klamm console --bootstrap broker:9092 [--listen 127.0.0.1:8080] [--read-only]
    klamm console -b kafka.example:9093 --ssl --ssl-cafile ca.pem --sasl-mechanism scram-sha-512 \\
        --sasl-user alice:secret --listen 0.0.0.0:8080 --token s3cret

The console talks to the cluster through klamm's client only (klamm.console), so it shows a klamm
broker, Apache Kafka, Tansu or a managed cluster alike. `klamm broker --console HOST:PORT` serves
the same console beside a broker, in the broker's process. Exit codes: 2 for bad settings, 1 when
the cluster cannot be reached or the address cannot be bound, 0 after Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import socket
import sys
from typing import Any

from klamm.cli import logs
from klamm.cli._common import bootstrap_servers, host_port, key_value, positive_int, seconds

DEFAULT_LISTEN = "127.0.0.1:8080"


def _listen(value: str) -> tuple[str, int]:
    return host_port(value, allow_zero=True)


def _user(value: str) -> tuple[str, str]:
    name, sep, password = value.partition(":")
    if not sep or not name or not password:
        raise argparse.ArgumentTypeError(f"expected NAME:PASSWORD, got {value!r}")
    return name, password


def add_console_options(parser: argparse.ArgumentParser | Any, prefix: str = "") -> None:
    """Who may use the console: `--read-only`, `--token`, `--user` for `klamm console`; the same
    with `prefix="console-"` for `klamm broker`, where they would otherwise read as broker
    settings."""
    parser.add_argument(f"--{prefix}read-only", dest="console_read_only", action="store_true",
                        help="hide and refuse every action that changes the cluster")  # fmt: skip
    parser.add_argument(f"--{prefix}token", dest="console_token", default=None, metavar="TOKEN",
                        help="require this token to log in (a login is needed to listen "
                        "beyond 127.0.0.1)")  # fmt: skip
    parser.add_argument(f"--{prefix}user", dest="console_user", type=_user, default=None,
                        metavar="NAME:PASSWORD", help="require this user to log in")  # fmt: skip
    # The message browser's bounds (klamm.console.config has the defaults and their reasons).
    parser.add_argument(f"--{prefix}page-bytes", dest="console_page_bytes", type=positive_int,
                        default=None, metavar="BYTES",
                        help="most bytes of messages one page reads (default 4 MiB)")  # fmt: skip
    parser.add_argument(f"--{prefix}scan-messages", dest="console_scan_messages",
                        type=positive_int, default=None, metavar="N",
                        help="most messages one filtered search scans (default 10000)")  # fmt: skip


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "console",
        help="web console for any Kafka cluster",
        description="Serve a web console (topics, messages, consumer groups, lag) for a Kafka "
        "cluster, talking to it over the Kafka protocol only.",
    )
    parser.add_argument("-b", "--bootstrap", "--bootstrap-server", dest="bootstrap",
                        type=bootstrap_servers, default="127.0.0.1:9092",
                        metavar="HOST:PORT[,...]",
                        help="brokers to bootstrap from (default 127.0.0.1:9092)")  # fmt: skip
    parser.add_argument("--listen", type=_listen, default=host_port(DEFAULT_LISTEN),
                        metavar="HOST:PORT",
                        help=f"where the console listens (default {DEFAULT_LISTEN})")  # fmt: skip
    add_console_options(parser)
    parser.add_argument("--timeout", type=seconds, default=10.0, metavar="SECONDS",
                        help="how long to wait for the cluster at start (default 10)")  # fmt: skip
    security = parser.add_argument_group("connection security")
    security.add_argument("--ssl", action="store_true", help="connect with TLS")
    security.add_argument("--ssl-cafile", default=None, metavar="PEM",
                          help="CA certificates to verify the brokers (implies --ssl)")  # fmt: skip
    security.add_argument("--sasl-mechanism", default=None,
                          choices=["plain", "scram-sha-256", "scram-sha-512"],
                          help="SASL mechanism (default plain with --sasl-user)")  # fmt: skip
    security.add_argument("--sasl-user", type=_user, default=None, metavar="NAME:PASSWORD",
                          help="SASL login")  # fmt: skip
    parser.add_argument("-X", dest="client_props", type=key_value, action="append",
                        default=[], metavar="PROP=VALUE",
                        help="librdkafka client property (repeatable)")  # fmt: skip
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])  # fmt: skip
    parser.set_defaults(func=main)


def console_config(args: argparse.Namespace, *, host: str, port: int, brokers: str) -> Any:
    """A klamm.console.ConsoleConfig from the shared options (imported late: `klamm --help`
    should not pay for Starlette and Jinja2)."""
    from klamm.console import ConsoleConfig

    bounds = {
        name: value
        for name, value in (("page_bytes", args.console_page_bytes),
                            ("scan_messages", args.console_scan_messages))
        if value is not None
    }  # fmt: skip
    return ConsoleConfig(
        **bounds,
        host=host,
        port=port,
        brokers=brokers,
        read_only=args.console_read_only,
        token=args.console_token,
        user=args.console_user,
        ssl=getattr(args, "ssl_settings", None),
        sasl=getattr(args, "sasl_settings", None),
        client_config=dict(getattr(args, "client_props", []) or []),
        connect_timeout_s=getattr(args, "timeout", 10.0),
    )


def main(args: argparse.Namespace) -> int:
    from klamm.client import KafkaError
    from klamm.console import ConsoleConfigError

    logs.configure(args.log_level, "text")
    if args.ssl or args.ssl_cafile:
        args.ssl_settings = {"ca_location": args.ssl_cafile} if args.ssl_cafile else True
    if args.sasl_user is not None:
        args.sasl_settings = {
            "mechanism": args.sasl_mechanism or "plain",
            "username": args.sasl_user[0],
            "password": args.sasl_user[1],
        }
    host, port = args.listen
    try:
        config = console_config(args, host=host, port=port, brokers=args.bootstrap)
        config.check()
    except ConsoleConfigError as exc:
        print(f"klamm console: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(config))
    except KafkaError as exc:
        print(f"klamm console: cannot reach {args.bootstrap}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"klamm console: cannot listen on {host}:{port}: {exc.strerror or exc}",
              file=sys.stderr)  # fmt: skip
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


# --- beside a broker (`klamm broker --console`) --------------------------------------------------


def console_beside_broker(args: argparse.Namespace) -> tuple[Any, str | None]:
    """The console's settings for `klamm broker --console` (None without the flag; the
    bootstrap is filled in once the broker listens), or why it cannot start: no login beyond
    loopback, or a busy address (found now, not after the broker started)."""
    if args.console is None:
        return None, None
    from klamm.console import ConsoleConfigError

    host, port = args.console
    try:
        settings = console_config(args, host=host, port=port, brokers="127.0.0.1:0")
        settings.check()
    except ConsoleConfigError as exc:
        return None, str(exc)
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        return None, f"cannot serve the console on {host}:{port}: {exc.strerror or exc}"
    return settings, None


def console_login(config: Any) -> dict[str, str] | None:
    """The SASL login of a console beside a broker whose listener wants one: a super user when
    some SASL user is one (with an authorizer on, it shows the whole cluster), else the first
    user; PLAIN when enabled (no key derivation per connection), else the first mechanism."""
    if not config.security_protocol.startswith("SASL") or not config.sasl_users:
        return None
    users = list(config.sasl_users.items())
    supers = [u for u in users if f"User:{u[0]}" in config.super_users]
    name, password = (supers or users)[0]
    mechanism = "plain" if "PLAIN" in config.sasl_mechanisms else config.sasl_mechanisms[0]
    return {"mechanism": mechanism.lower(), "username": name, "password": password}


async def serve_console(broker: Any, settings: Any, stop: asyncio.Event) -> BaseException | None:
    """Serve the console beside `broker` until `stop` is set; returns what made it fail to start
    (and sets `stop`: the user asked for both, and a half-started pair would hide the failure).
    The console reaches the broker as any client does: over its advertised address, with a
    SASL user when the listener wants one (console_login), trusting its own TLS certificate."""
    from klamm.console import ConsoleServer

    config = broker.config
    host, port = config.advertised
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"  # a wildcard listen address is reachable on loopback
    changes: dict[str, Any] = {"brokers": f"{host}:{port}"}
    login = console_login(config)
    if login is not None:
        changes["sasl"] = login
    if config.tls_enabled:
        # Its own process over loopback: the certificate is the one the broker was given.
        changes["ssl"] = {"reject_unauthorized": False}
    server = ConsoleServer(dataclasses.replace(settings, **changes))
    try:
        await server.start()
    except Exception as exc:
        stop.set()
        return exc
    print(f"klamm console: open {server.url}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()
    return None


async def _serve(config: Any) -> None:
    from klamm.console import ConsoleServer

    server = ConsoleServer(config)
    await server.start()
    print(f"klamm console: open {server.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
