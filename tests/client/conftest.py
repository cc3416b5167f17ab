"""Fixtures for the client tests: a Kafka client on the shared embedded broker, fast consumer
settings, and a throwaway PostgreSQL server for PostgresStore."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from klamm import Kafka, RetryPolicy


@pytest.fixture
def kafka(kafka_broker: Any) -> Kafka:
    return Kafka(
        client_id="klamm-tests",
        brokers=[kafka_broker.bootstrap],
        retry=RetryPolicy(initial_retry_time_ms=20, max_retry_time_ms=500, retries=3),
    )


# -- PostgreSQL -------------------------------------------------------------------------------


def _pg_bin() -> str | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "initdb")):
            return candidate
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A PostgreSQL server in a temp dir for this session. Skips only outside CI: in CI
    (CI=true) missing binaries are a failure, because .ci/run installs them."""
    bindir = _pg_bin()
    if bindir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL binaries not found but CI=true (.ci/run installs postgresql)")
        pytest.skip("PostgreSQL binaries not installed (apt-get install postgresql)")
    root = tempfile.mkdtemp(prefix="klamm-pg-")
    data = os.path.join(root, "data")
    # initdb refuses to run as root: run the server as the postgres user then.
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=60)

    run(f"{bindir}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(f"{bindir}/pg_ctl", "-D", data, "-o", opts, "-l", f"{root}/log", "-w", "start")
    try:
        yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    finally:
        run(f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
