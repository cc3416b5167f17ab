"""`klamm registry`: a Confluent-compatible Schema Registry against any Kafka cluster."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

from klamm.cli import logs
from klamm.cli._common import DEFAULT_BOOTSTRAP, host_port


def _listen(value: str) -> tuple[str, int]:
    return host_port(value, allow_zero=True)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "registry",
        help="run a Confluent-compatible Schema Registry (state in the _schemas topic)",
        description="Serve Confluent Schema Registry's REST API; its state lives in a compacted "
        "topic of the Kafka cluster at --bootstrap, in Confluent's record format.",
    )
    parser.add_argument(
        "--bootstrap",
        "-b",
        default=DEFAULT_BOOTSTRAP,
        metavar="HOST:PORT",
        help=f"Kafka bootstrap servers (default {DEFAULT_BOOTSTRAP})",
    )
    parser.add_argument(
        "--listen",
        type=_listen,
        default=("127.0.0.1", 8081),
        metavar="HOST:PORT",
        help="address to serve HTTP on (default 127.0.0.1:8081)",
    )
    parser.add_argument(
        "--topic", default="_schemas", help="the registry's topic (Confluent's kafkastore.topic)"
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    logs.configure(args.log_level, "text")
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the store or the listener failed to start
        print(f"klamm registry: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(args: argparse.Namespace) -> None:
    from klamm.schema.server import RegistryServer

    host, port = args.listen
    server = RegistryServer(args.bootstrap, host, port, topic=args.topic)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    await server.start()
    print(
        f"schema registry on {server.url}, state in {args.topic} at {args.bootstrap}",
        file=sys.stderr,
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await server.stop()
