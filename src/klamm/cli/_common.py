"""What every operator subcommand shares: connection options, error handling, output.

The operator commands talk to ANY Kafka cluster through confluent-kafka (librdkafka) directly:
they are short-lived, synchronous programs, so the blocking librdkafka API is the simplest fit and
keeps them independent of klamm's asyncio client.

Error contract (DESIGN.md §1, kcat / kafka-*.sh users expect it):
- bad arguments: argparse's message and exit code 2;
- expected failures (cannot connect, unknown topic, broker said no): one line on stderr, exit 1;
- Ctrl-C: exit 130, no traceback, wherever it lands (see `_interrupt_guard`).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka import admin as _rd_admin
from confluent_kafka.admin import AdminClient
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

T = TypeVar("T")

# confluent_kafka.admin re-exports its classes (NewTopic, ConfigEntry, ...) without `__all__`,
# which mypy --strict rejects; the commands reach them through this alias.
rd: Any = _rd_admin

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
# Seconds a command waits on the cluster before giving up. Ten seconds is long enough for a slow
# managed cluster's metadata round trip and short enough that a typo in -b fails promptly.
DEFAULT_TIMEOUT = 10.0
# The longest --timeout: librdkafka's millisecond settings (socket.connection.setup.timeout.ms,
# message.timeout.ms) are 32-bit, so 2^31-1 ms is the most any of them accepts.
MAX_TIMEOUT = (2**31 - 1) // 1000
# TCP ports are 16-bit. Port 0 asks the OS for any free port: meaningful for a listener, never
# for an address to connect to.
MAX_PORT = 65535
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


def port_number(text: str, *, allow_zero: bool = False) -> int:
    """argparse-style check of a port: 1..65535, or 0..65535 where 0 means "pick one"."""
    low = 0 if allow_zero else 1
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"port must be {low}..{MAX_PORT}, got {text!r}")
    return int(text)


def host_port(value: str, *, allow_zero: bool = False) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:PORT` for IPv6) as (host, port); an empty host is 127.0.0.1."""
    host, sep, port = value.rpartition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    try:
        number = port_number(port, allow_zero=allow_zero)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"bad address {value!r}: {exc}") from None
    return host.strip("[]") or "127.0.0.1", number


def _addresses(bootstrap: str) -> list[str]:
    """The HOST:PORT entries of a bootstrap list, without librdkafka's optional `PROTO://`."""
    return [address.strip().split("://")[-1] for address in bootstrap.split(",")]


def bootstrap_servers(value: str) -> str:
    """argparse type for -b: every address must be HOST:PORT with a port of 1..65535."""
    for address in _addresses(value):
        host_port(address)
    return value


def positive_int(value: str) -> int:
    """argparse type: an integer of at least 1 (`1_000` allowed)."""
    number = non_negative_int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def non_negative_int(value: str) -> int:
    """argparse type: an integer of at least 0 (`1_000` allowed)."""
    try:
        number = int(value.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value!r}")
    return number


def seconds(value: str) -> float:
    """argparse type for --timeout: a finite, positive number of seconds librdkafka accepts."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {value!r}") from None
    if not (math.isfinite(number) and 0 < number <= MAX_TIMEOUT):
        raise argparse.ArgumentTypeError(
            f"expected seconds greater than 0 and at most {MAX_TIMEOUT}, got {value!r}"
        )
    return number


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-b",
        "--bootstrap-server",
        type=bootstrap_servers,
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
        type=seconds,
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
            with _interrupt_guard() as interrupted:
                try:
                    return func(args)
                except KeyboardInterrupt:
                    return 130
                except Exception as exc:
                    if interrupted.is_set():
                        return 130  # whatever failed, failed because of the Ctrl-C
                    return _expected_failure(name, exc)

        return run

    return wrap


def _expected_failure(name: str, exc: Exception) -> int:
    """The exit code for an expected failure, its line printed; anything else is re-raised."""
    if isinstance(exc, CliError):
        return fail(name, str(exc), exc.exit_code)
    if isinstance(exc, KafkaException):
        return fail(name, describe_error(exc), 1)
    if isinstance(exc, BrokenPipeError):
        # `klamm consume ... | head`: the reader left; that is not an error.
        _silence_stdout()
        return 0
    raise exc


@contextlib.contextmanager
def _interrupt_guard() -> Iterator[threading.Event]:
    """Remember that Ctrl-C was pressed, for the duration of a command.

    Python raises KeyboardInterrupt wherever the main thread is, and that may be inside a
    librdkafka callback (error_cb, logger, on_delivery): confluent-kafka then reports
    `SystemError: <method 'poll'> returned NULL without setting an exception` instead. The
    flag lets `command` recognise any such failure as the interrupt it is.
    """
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted  # signal handlers belong to the main thread
        return

    def on_sigint(signum: int, frame: Any) -> None:
        interrupted.set()
        signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield interrupted
    finally:
        # None: a handler not set from Python, which signal.signal cannot reinstate.
        signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)


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


def quiet_logger() -> logging.Logger:
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
        "logger": quiet_logger(),
        "error_cb": lambda _err: None,  # errors surface as results; see describe_error
    }  # long-running commands pass an ErrorReporter as error_cb instead
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
    for address in _addresses(bootstrap):
        try:
            host, port = host_port(address)
        except argparse.ArgumentTypeError as exc:
            raise CliError(f"bad bootstrap address: {exc}", 2) from None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            with socket.create_connection((host, port), remaining):
                return
        except OSError as exc:
            reasons.append(f"{address}: {exc.strerror or exc}")
    raise CliError(f"cannot connect to {bootstrap} ({'; '.join(reasons) or 'timed out'})")


class ErrorReporter:
    """librdkafka's error_cb for a long-running command: one stderr line per error state.

    librdkafka reports every failed reconnect (several a second while a broker is down); like
    kcat's "% ERROR: Local: Broker transport failure", the user needs to hear it once. Each
    error code is printed the first time it occurs after the last `recovered()`.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._reported: set[int] = set()

    def __call__(self, err: KafkaError) -> None:
        if err.code() not in self._reported:
            self._reported.add(err.code())
            print(f"klamm {self.name}: error: {describe_error(err)}", file=sys.stderr, flush=True)

    def recovered(self) -> None:
        """The cluster answers again: report the next failure anew."""
        self._reported.clear()


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
    """A table whose numbers are never cut to "2…": numeric columns do not wrap and text folds.
    Print it with `print_table`, which makes room for it."""
    right = set(numeric)
    result = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        if column in right:
            result.add_column(column, justify="right", no_wrap=True)
        else:
            result.add_column(column, justify="left", overflow="fold")
    return result


def print_table(out: Console, result: Table) -> None:
    """Print a table, wider than the terminal if it cannot fit without truncating.

    On a narrow terminal rich shrinks every column until the table fits, numbers and headers
    included ("2…", "t…"). A table that does not fit even with its text wrapped is printed at
    its natural width instead: the terminal wraps the long lines, which loses nothing.
    """
    fit = Measurement.get(out, out.options.update_width(sys.maxsize), result)
    width = out.width
    if fit.minimum <= width:
        out.print(result)
        return
    out.width = fit.maximum  # print(width=...) cannot exceed the console's width; this can
    try:
        out.print(result)
    finally:
        out.width = width


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
