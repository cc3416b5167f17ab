"""What authorization costs on the produce and fetch paths (issue 13).

    python bench/authorization.py [--rounds 5] [--seconds 3]

Three `python -m klamm broker` children run side by side, all SASL_PLAINTEXT (so the login and
framing are the same for all): `off` has no authorizer; `few` has the StandardAuthorizer and
the bench user's two ACLs (WRITE and READ on topic bench); `10k` has those plus 10,000 more
(PREFIXED ACLs of 1,000 other users on prefixes of every length from 3 to 12 characters, and
LITERAL ones on other topics). One raw client, logged in as `bench`, sends back-to-back Produce
requests (8 partitions x 10 records, acks=1) and then Fetch requests (the same 8 partitions from
offset 0, 4 KiB each), for `--seconds` each; every round measures the three brokers one after
the other, so they share the machine's state. Printed: requests/s and the broker's CPU per
request (utime+stime from /proc), median and range over the rounds, and each authorized
configuration against `off` (the median of the per-round ratios).

On a shared machine those end-to-end figures are noisier than the check itself, so a second
table times the check alone, in this process: what the produce handler asks per request
(`checks.denied` for one topic of 8 partitions) against the same ACL sets, answered from the
authorizer's decision cache (every request after the first) and decided afresh (a new topic
name each time), with the authorizer off for reference.
"""

from __future__ import annotations

import argparse
import io
import itertools
import socket
import statistics
import struct
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kio.serial import entity_reader, entity_writer

from klamm.broker.authorizer import checks
from klamm.broker.authorizer.acls import AclBinding
from klamm.broker.authorizer.model import Operation, PatternType, Permission, ResourceType
from klamm.broker.authorizer.standard import StandardAuthorizer
from klamm.broker.config import AUTHORIZER_CLASSES
from klamm.broker.context import Session
from klamm.protocol.build import build
from klamm.protocol.messages import request_type, response_type
from klamm.protocol.record_batch import Record, RecordBatch, build_batch
from klamm.testing import EmbeddedBroker

USERS = {"admin": "admin-pw", "bench": "bench-pw"}
PARTITIONS = 8
RECORDS_PER_BATCH = 10
VALUE = b"x" * 100
# A few batches per partition: small answers, so the per-request cost (where authorization
# sits) is not drowned by copying bytes.
FETCH_PARTITION_BYTES = 4 * 1024
EXTRA_ACLS = 10_000
ACLS_PER_REQUEST = 1_000  # CreateAcls batch: one request per thousand ACLs
TICKS = 100  # /proc/<pid>/stat counts CPU time in 1/100 s on Linux (USER_HZ)
TOPIC, CREATE_ACLS = 2, 30
PREFIXED, LITERAL = 4, 3
ALLOW, READ, WRITE = 3, 3, 4


class Client:
    """One connection; just enough of the protocol to log in and time requests."""

    def __init__(self, port: int, user: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.correlation = 0
        self.request(17, 1, mechanism="PLAIN")
        token = b"\0" + user.encode() + b"\0" + USERS[user].encode()
        answer = self.request(36, 2, auth_bytes=token)
        assert answer.error_code == 0, answer

    def encode(self, api_key: int, version: int, **fields: Any) -> bytes:
        self.correlation += 1
        cls = request_type(api_key, version)
        head = struct.pack(">hhih", api_key, version, self.correlation, 5) + b"bench"
        if cls.__flexible__:
            head += b"\0"
        body = io.BytesIO()
        entity_writer(cls)(body, build(cls, **fields))
        payload = head + body.getvalue()
        return struct.pack(">i", len(payload)) + payload

    def send(self, frame: bytes, api_key: int, version: int) -> Any:
        self.sock.sendall(frame)
        size = struct.unpack(">i", self._exact(4))[0]
        data = self._exact(size)
        cls = response_type(api_key, version)
        return entity_reader(cls)(data, 4 + (1 if cls.__flexible__ else 0))[0]

    def request(self, api_key: int, version: int, **fields: Any) -> Any:
        return self.send(self.encode(api_key, version, **fields), api_key, version)

    def _exact(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(min(n - len(out), 1 << 20))
            if not chunk:
                raise ConnectionError("closed by broker")
            out += chunk
        return bytes(out)

    def close(self) -> None:
        self.sock.close()


def broker(authorizer: bool) -> EmbeddedBroker:
    """A SASL/PLAIN subprocess broker with the bench's users; `authorizer`: the
    StandardAuthorizer on, with `admin` as super user."""
    settings: dict[str, Any] = {}
    if authorizer:
        settings = {"authorizer_class_name": AUTHORIZER_CLASSES[0], "super_users": ("User:admin",)}
    return EmbeddedBroker(
        mode="subprocess", security_protocol="SASL_PLAINTEXT", sasl_mechanisms=("PLAIN",),
        sasl_users=USERS, **settings,
    )  # fmt: skip


def _acl(name: str, pattern: int, principal: str, operation: int) -> dict[str, Any]:
    return {"resource_type": TOPIC, "resource_name": name, "resource_pattern_type": pattern,
            "principal": principal, "host": "*", "operation": operation,
            "permission_type": ALLOW}  # fmt: skip


def extra_acls() -> list[dict[str, Any]]:
    """EXTRA_ACLS ACLs that never apply to the bench user: half PREFIXED for other users on
    prefixes of 3 to 12 characters (the authorizer probes each prefix length present), half
    LITERAL on other topics, some of them for the bench user."""
    acls = []
    for i in range(EXTRA_ACLS // 2):
        prefix = f"p{i:05d}-"[: 3 + i % 10].ljust(3 + i % 10, "z")
        acls.append(_acl(prefix, PREFIXED, f"User:u{i % 1000}", READ))
        acls.append(_acl(f"other-{i}", LITERAL, "User:bench" if i % 10 == 0 else "User:x", WRITE))
    return acls


def setup(port: int, acls: list[dict[str, Any]]) -> None:
    admin = Client(port, "admin")
    try:
        created = admin.request(19, 4, timeout=30_000, validate_only=False, topics=[
            {"name": "bench", "num_partitions": PARTITIONS, "replication_factor": 1,
             "assignments": [], "configs": []}])  # fmt: skip
        assert created.topics[0].error_code == 0, created
        for start in range(0, len(acls), ACLS_PER_REQUEST):
            answer = admin.request(CREATE_ACLS, 3, creations=acls[start : start + ACLS_PER_REQUEST])
            assert all(r.error_code == 0 for r in answer.results), answer
    finally:
        admin.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def produce_frame(client: Client) -> bytes:
    now = int(time.time() * 1000)
    records = [Record(i, now, b"k", VALUE) for i in range(RECORDS_PER_BATCH)]
    batch = build_batch(RecordBatch(records=records))
    return client.encode(0, 9, transactional_id=None, acks=1, timeout=30_000, topic_data=[
        {"name": "bench", "partition_data": [
            {"index": p, "records": batch} for p in range(PARTITIONS)]}])  # fmt: skip


def fetch_frame(client: Client) -> bytes:
    return client.encode(
        1, 12, cluster_id=None, replica_id=-1, max_wait=0, min_bytes=1, max_bytes=1 << 24,
        isolation_level=0, session_id=0, session_epoch=-1, forgotten_topics_data=[], rack_id="",
        topics=[{"topic": "bench", "topic_id": None, "partitions": [
            {"partition": p, "current_leader_epoch": -1, "fetch_offset": 0,
             "last_fetched_epoch": -1, "log_start_offset": -1,
             "partition_max_bytes": FETCH_PARTITION_BYTES} for p in range(PARTITIONS)]}],
    )  # fmt: skip


def measure(
    client: Client, pid: int, frame: bytes, key: int, version: int,
    seconds: float, check: Callable[[Any], None],
) -> tuple[float, float]:  # fmt: skip
    """(requests per second, broker CPU microseconds per request) for `seconds`."""
    check(client.send(frame, key, version))  # the answer is what it should be
    count, cpu0, start = 0, cpu_seconds(pid), time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        client.send(frame, key, version)
        count += 1
    return count / elapsed, (cpu_seconds(pid) - cpu0) / count * 1e6


def _produced(answer: Any) -> None:
    codes = {p.error_code for t in answer.responses for p in t.partition_responses}
    assert codes == {0}, answer


def _fetched(answer: Any) -> None:
    parts = [p for t in answer.responses for p in t.partitions]
    assert {p.error_code for p in parts} == {0} and all(p.records for p in parts), answer


CONFIGS = ("off", "few", "10k")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--check-only", action="store_true", help="only the in-process table")
    args = parser.parse_args()
    own = [_acl("bench", LITERAL, "User:bench", WRITE), _acl("bench", LITERAL, "User:bench", READ)]
    if args.check_only:
        decision_cost(own)
        return
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with ExitStack() as stack:
        running = {}
        for name in CONFIGS:
            embedded = stack.enter_context(broker(authorizer=name != "off"))
            port, pid = embedded.port, embedded.pid
            assert pid is not None  # a subprocess broker
            setup(port, [] if name == "off" else own + (extra_acls() if name == "10k" else []))
            client = Client(port, "bench")
            stack.callback(client.close)
            running[name] = (client, pid)
        for round_ in range(args.rounds):
            for name in CONFIGS:
                client, pid = running[name]
                frame = produce_frame(client)
                results.setdefault(("produce", name), []).append(
                    measure(client, pid, frame, 0, 9, args.seconds, _produced)
                )
                frame = fetch_frame(client)
                results.setdefault(("fetch", name), []).append(
                    measure(client, pid, frame, 1, 12, args.seconds, _fetched))  # fmt: skip
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
    report(results)
    print()
    decision_cost(own)


def _spread(values: list[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def report(results: dict[tuple[str, str], list[tuple[float, float]]]) -> None:
    print("authorization cost (medians over rounds, range in parentheses; shared 2-core machine)")
    print(f"{'path':<8} {'config':<5} {'requests/s':>24} {'broker CPU us/req':>24} "
          f"{'req/s vs off':>13} {'CPU vs off':>11}")  # fmt: skip
    for path in ("produce", "fetch"):
        base = results[(path, "off")]
        for name in CONFIGS:
            rows = results[(path, name)]
            rate = _spread([r for r, _ in rows], ",.0f")
            cpu = _spread([c for _, c in rows], ",.1f")
            rate_ratio = statistics.median(r / b for (r, _), (b, _) in zip(rows, base, strict=True))
            cpu_ratio = statistics.median(c / b for (_, c), (_, b) in zip(rows, base, strict=True))
            print(
                f"{path:<8} {name:<5} {rate:>24} {cpu:>24} {rate_ratio:>13.3f} {cpu_ratio:>11.3f}"
            )


def _binding(acl: dict[str, Any]) -> AclBinding:
    return AclBinding(
        ResourceType(acl["resource_type"]), acl["resource_name"],
        PatternType(acl["resource_pattern_type"]), acl["principal"], acl["host"],
        Operation(acl["operation"]), Permission(acl["permission_type"]),
    )  # fmt: skip


def _per_call_us(call: Callable[[int], object], calls: int) -> float:
    """The best of 5 runs of `calls` calls, in microseconds a call."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for i in range(calls):
            call(i)
        best = min(best, time.perf_counter() - start)
    return best / calls * 1e6


# Topic names never asked about before: every check is decided, not read from the cache.
_FRESH = itertools.count()


def _asking(ctx: Any, names: Callable[[int], list[str]]) -> Callable[[int], object]:
    return lambda i: checks.denied(ctx, Operation.WRITE, ResourceType.TOPIC, names(i))


def decision_cost(own: list[dict[str, Any]]) -> None:
    session = Session(peer="127.0.0.1:50000", principal="User:bench")
    names = ["bench"] * PARTITIONS  # one topic, 8 partitions: what a produce request names
    print("the check alone, per request (in-process, best of 5 runs of 20,000 requests)")
    print(f"{'ACLs':<6} {'cached decision us':>19} {'fresh decision us':>18}")
    off: Any = SimpleNamespace(broker=SimpleNamespace(authorizer=SimpleNamespace(enabled=False)))
    us = _per_call_us(
        lambda i: checks.denied(off, Operation.WRITE, ResourceType.TOPIC, names), 20_000
    )
    print(f"{'off':<6} {us:>19.2f} {'-':>18}")
    for label, acls in (("few", own), ("10k", own + extra_acls())):
        authorizer = StandardAuthorizer(("User:admin",))
        for acl in acls:
            authorizer.add(_binding(acl))
        ctx: Any = SimpleNamespace(broker=SimpleNamespace(authorizer=authorizer), session=session)
        cached = _per_call_us(_asking(ctx, lambda i: names), 20_000)
        fresh = _per_call_us(_asking(ctx, lambda i: [f"bench-{next(_FRESH)}"]), 20_000)
        print(f"{label:<6} {cached:>19.2f} {fresh:>18.2f}")


if __name__ == "__main__":
    main()
