"""What every operator subcommand shares: connection options, error handling, output.

The operator commands talk to ANY Kafka cluster through confluent-kafka (librdkafka) directly:
they are short-lived, synchronous programs, so the blocking librdkafka API is the simplest fit and
keeps them independent of klamm's asyncio client.

Error contract (DESIGN.md §1, kcat / kafka-*.sh users expect it):
- bad arguments: argparse's message and exit code 2;
- expected failures (cannot connect, unknown topic, broker said no): one line on stderr, exit 1;
- Ctrl-C: exit 130, no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka import admin as _rd_admin
from confluent_kafka.admin import AdminClient
from rich.console import Console
from rich.table import Table

T = TypeVar("T")

# confluent_kafka.admin re-exports its classes (NewTopic, ConfigEntry, ...) without `__all__`,
# which mypy --strict rejects; the commands reach them through this alias.
rd: Any = _rd_admin

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
# Seconds a command waits on the cluster before giving up. Ten seconds is long enough for a slow
# managed cluster's metadata round trip and short enough that a typo in -b fails promptly.
DEFAULT_TIMEOUT = 10.0
# Rich wraps tables to the terminal; piped output has no terminal, and 80 columns would wrap member
# ids and topic names mid-word, so non-terminals get a wide virtual screen.
PIPE_WIDTH = 200


class CliError(Exception):
    """An expected failure: printed as one line on stderr, then `exit_code`."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# --- arguments -------------------------------------------------------------------------------


def key_value(value: str) -> tuple[str, str]:
    """argparse type for `name=value` (configs, headers, -X properties)."""
    name, sep, rest = value.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {value!r}")
    return name, rest


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-b",
        "--bootstrap-server",
        default=DEFAULT_BOOTSTRAP,
        metavar="HOST:PORT[,...]",
        help=f"brokers to bootstrap from (default {DEFAULT_BOOTSTRAP})",
    )
    parser.add_argument(
        "-X",
        dest="client_props",
        type=key_value,
        action="append",
        default=[],
        metavar="PROP=VALUE",
        help="librdkafka client property, e.g. -X security.protocol=SASL_SSL (repeatable)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait on the cluster (default {DEFAULT_TIMEOUT:g})",
    )


def add_json_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable JSON output")


def add_cluster_command(
    subparsers: Any, name: str, func: Callable[..., int], **parser_options: Any
) -> argparse.ArgumentParser:
    """A (sub)command that talks to a cluster: its parser, with the connection options and
    --json, run by `func`. The caller adds the command's own arguments."""
    parser: argparse.ArgumentParser = subparsers.add_parser(name, **parser_options)
    add_connection_args(parser)
    add_json_arg(parser)
    parser.set_defaults(func=func)
    return parser


# --- running a command -----------------------------------------------------------------------


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[..., int]]:
    """Wrap a subcommand's entry point with the error contract of this module."""

    def wrap(func: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
        @functools.wraps(func)
        def run(args: argparse.Namespace) -> int:
            try:
                return func(args)
            except CliError as exc:
                return fail(name, str(exc), exc.exit_code)
            except KafkaException as exc:
                return fail(name, describe_error(exc), 1)
            except KeyboardInterrupt:
                return 130
            except BrokenPipeError:
                # `klamm consume ... | head`: the reader left; that is not an error.
                _silence_stdout()
                return 0

        return run

    return wrap


def fail(name: str, message: str, exit_code: int) -> int:
    print(f"klamm {name}: {message}", file=sys.stderr)
    return exit_code


def _silence_stdout() -> None:
    # Python flushes stdout at exit and would raise again on the closed pipe.
    with contextlib.suppress(OSError):
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives until the process exits


def describe_error(exc: BaseException | KafkaError) -> str:
    """One readable line for a librdkafka error (KafkaException or KafkaError)."""
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else exc
    if isinstance(err, KafkaError):
        text = err.str() or err.name()
        if err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            return f"unknown topic or partition ({text})"
        if err.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
            return f"cannot reach the cluster: {text}"
        if err.code() == KafkaError._TIMED_OUT:
            return f"timed out waiting for the cluster: {text}"
        return text
    return str(exc)


# --- connecting ------------------------------------------------------------------------------


def _quiet_logger() -> logging.Logger:
    # librdkafka prints every failed connect attempt to stderr (20 lines a second against a
    # closed port); routing its log through a silent logger keeps our one-line error contract.
    logger = logging.getLogger("klamm.cli.librdkafka")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
    return logger


def client_config(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """librdkafka settings for a command: bootstrap, short timeouts, quiet logs, then -X."""
    timeout_ms = max(1000, int(args.timeout * 1000))
    conf: dict[str, Any] = {
        "bootstrap.servers": args.bootstrap_server,
        "client.id": "klamm-cli",
        "socket.connection.setup.timeout.ms": timeout_ms,
        "logger": _quiet_logger(),
        "error_cb": lambda _err: None,  # errors surface as results; see describe_error
    }
    conf.update(extra)
    conf.update(dict(args.client_props))
    return conf


def probe(bootstrap: str, timeout: float) -> None:
    """Fail fast with "connection refused" when no bootstrap address accepts TCP connections.

    librdkafka only reports a refused connection as a metadata timeout after the full timeout;
    a plain TCP connect answers in milliseconds and names the actual cause.
    """
    deadline = time.monotonic() + timeout
    reasons = []
    for address in bootstrap.split(","):
        address = address.strip().split("://")[-1]
        host, _, port = address.rpartition(":")
        if not port.isdigit():
            raise CliError(f"bad bootstrap address {address!r}: expected HOST:PORT", 2)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), remaining):
                return
        except OSError as exc:
            reasons.append(f"{address}: {exc.strerror or exc}")
    raise CliError(f"cannot connect to {bootstrap} ({'; '.join(reasons) or 'timed out'})")


def admin_client(args: argparse.Namespace) -> AdminClient:
    probe(args.bootstrap_server, args.timeout)
    # The admin client is a librdkafka producer underneath, which would auto-create any topic
    # it asks metadata about: `topics describe typo` must not create "typo".
    return AdminClient(client_config(args, **{"allow.auto.create.topics": False}))


def wait(future: Future[T], timeout: float) -> T:
    """The result of an AdminClient future, its librdkafka error raised as KafkaException."""
    try:
        return future.result(timeout=timeout + 1)
    except TimeoutError:
        raise CliError(f"timed out after {timeout:g}s waiting for the cluster") from None


def topic_metadata(client: Any, topic: str | None, timeout: float) -> Any:
    """ClusterMetadata for one topic (or all): a CliError instead of librdkafka's exception."""
    try:
        if topic is None:
            return client.list_topics(timeout=timeout)
        return client.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise CliError(describe_error(exc)) from None


def require_topic(client: Any, topic: str, timeout: float) -> Any:
    """The TopicMetadata of an existing topic; CliError "unknown topic" otherwise."""
    meta = topic_metadata(client, topic, timeout).topics.get(topic)
    if meta is None or meta.error is not None:
        if meta is not None and meta.error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise CliError(f"topic {topic!r}: {describe_error(meta.error)}")
        raise CliError(f"unknown topic {topic!r}")
    return meta


# --- output ----------------------------------------------------------------------------------


def console(stderr: bool = False) -> Console:
    """A rich console on the current stdout (tests swap sys.stdout, so never cache one)."""
    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()
    return Console(
        file=stream,
        width=None if terminal else PIPE_WIDTH,
        highlight=False,
        soft_wrap=not terminal,
    )


def table(*columns: str, title: str | None = None, numeric: Iterable[str] = ()) -> Table:
    right = set(numeric)
    result = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        result.add_column(column, justify="right" if column in right else "left")
    return result


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
    sys.stdout.flush()


def text(value: bytes | None) -> str:
    """Keys, values and header values for human output: UTF-8 when possible, else repr."""
    if value is None:
        return ""
    try:
        return value.decode()
    except UnicodeDecodeError:
        return repr(value)


def report_deletions(args: argparse.Namespace, noun: str, deleted: list[str],
                     failures: list[str]) -> int:  # fmt: skip
    """The end of a `delete` command: what went, then one error line for what did not."""
    if args.json:
        print_json({"deleted": deleted, "errors": failures})
    else:
        for name in deleted:
            console().print(f"deleted {noun} {name}")
    if failures:
        raise CliError("cannot delete " + "; ".join(failures))
    return 0
