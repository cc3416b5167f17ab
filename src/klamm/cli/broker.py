"""`klamm broker`: run a Kafka-compatible broker."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from klamm.broker.config import (
    BrokerConfig,
    ConfigFileError,
    config_from_properties,
    parse_properties,
)


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host or "127.0.0.1", int(port)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "broker",
        help="run a Kafka-compatible broker",
        description="Run a Kafka-compatible broker on a durable on-disk log.",
    )
    parser.add_argument(
        "--listen",
        type=_host_port,
        default=None,
        metavar="HOST:PORT",
        help="address to listen on (default 127.0.0.1:9092)",
    )
    parser.add_argument(
        "--advertise",
        type=_host_port,
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
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])  # fmt: skip
    parser.set_defaults(func=main)


def build_config(args: argparse.Namespace) -> BrokerConfig:
    config = BrokerConfig()
    if args.config is not None:
        config = config_from_properties(parse_properties(args.config.read_text()), config)
    changes: dict[str, object] = {}
    if args.listen is not None:
        changes["host"], changes["port"] = args.listen
    if args.advertise is not None:
        changes["advertised_host"], changes["advertised_port"] = args.advertise
    if args.data_dir is not None:
        changes["data_dir"] = args.data_dir
    return config.replace(**changes)


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = build_config(args)
    except (OSError, ConfigFileError) as exc:
        print(f"klamm broker: {exc}", file=sys.stderr)
        return 2
    from klamm.broker.server import run

    try:
        run(config)
    except OSError as exc:
        print(f"klamm broker: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1
    return 0
