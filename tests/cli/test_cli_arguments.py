"""Bad arguments are argparse errors (exit 2) before anything connects or listens."""

from __future__ import annotations

import pytest

from klamm.cli.main import main
from tests.cli.cli_helpers import Cli


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.mark.parametrize(
    "argv",
    [
        ["--listen", "127.0.0.1:70000"],
        ["--listen", "127.0.0.1:65536"],
        ["--listen", "127.0.0.1:-1"],
        ["--advertise", "127.0.0.1:0"],
        ["--advertise", "127.0.0.1:99999"],
        ["--metrics", "127.0.0.1:0"],
        ["--metrics", "127.0.0.1:65536"],
    ],
)
def test_broker_rejects_ports_out_of_range(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _exit_code(["broker", *argv]) == 2
    assert "port must be" in capsys.readouterr().err


@pytest.mark.parametrize("bootstrap", ["127.0.0.1:99999", "127.0.0.1:0", "127.0.0.1:x", "host"])
def test_client_commands_reject_bad_bootstrap_ports(cli: Cli, bootstrap: str) -> None:
    result = cli("topics", "list", bootstrap=bootstrap)
    assert result.code == 2
    assert "-b/--bootstrap-server" in result.err and "Traceback" not in result.err


@pytest.mark.parametrize("timeout", ["nan", "inf", "-inf", "1e10", "0", "-5", "soon"])
def test_client_commands_reject_bad_timeouts(cli: Cli, timeout: str) -> None:
    result = cli("topics", "list", "--timeout", timeout)
    assert result.code == 2
    assert "argument --timeout" in result.err


def test_client_commands_accept_a_fractional_timeout(cli: Cli) -> None:
    assert cli("topics", "list", "--timeout", "2.5").code == 0
