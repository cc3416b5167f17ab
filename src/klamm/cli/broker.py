"""`klamm broker`: run a Kafka-compatible broker."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from klamm.broker.auth import MECHANISMS
from klamm.broker.config import (
    SECURITY_PROTOCOLS,
    BrokerConfig,
    ConfigFileError,
    config_from_properties,
    parse_properties,
    parse_users,
)
from klamm.cli import logs


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
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])  # fmt: skip
    parser.add_argument("--log-format", default="text", choices=["text", "json"],
                        help="json: one JSON object per line, for log pipelines")  # fmt: skip
    parser.add_argument("--metrics", type=_host_port, default=None, metavar="HOST:PORT",
                        help="serve Prometheus metrics at http://HOST:PORT/metrics")  # fmt: skip
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
    if args.metrics is not None:
        changes["metrics_host"], changes["metrics_port"] = args.metrics
    changes.update(_security_changes(args, config))
    config = config.replace(**changes)
    if config.tls_enabled and config.ssl_certfile is None:
        raise ConfigFileError(f"a {config.security_protocol} listener needs --ssl-certfile")
    return config


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
    logs.configure(args.log_level, args.log_format)
    try:
        config = build_config(args)
    except (OSError, ConfigFileError) as exc:
        print(f"klamm broker: {exc}", file=sys.stderr)
        return 2
    from klamm.broker.node import StartupError
    from klamm.broker.server import run

    try:
        run(config)
    except StartupError as exc:
        print(f"klamm broker: {exc}", file=sys.stderr)
        return 1
    return 0
