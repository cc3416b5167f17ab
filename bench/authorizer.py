"""What one `authorize()` costs with many ACLs: klamm's indexed StandardAuthorizer against a
linear scan of every ACL (what an unindexed authorizer does).

    python -m bench.authorizer [--acls 10000] [--rounds 5] [--seconds 0.5]

The ACLs: `--acls` spread over topics (literal and prefixed), groups and principals, plus a
`User:*` wildcard-topic ALLOW and a DENY, so every question walks literal, wildcard and prefix
patterns. The questions: a produce's WRITE and a fetch's READ on topics that exist in the ACLs,
by a principal that has them; asked again and again (the decision cache answers: the produce /
fetch hot path) and with the cache emptied before each question (every decision computed: the
first request after an ACL change). The linear scan walks every ACL for each question.

Rows: "cached" (the decision cache answers), "indexed" (cache emptied first, the index walked),
"linear scan". Rounds alternate the three measurements; the table shows each one's median and
range of calls per second and µs per call. Other work on the machine shifts all three together:
compare the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from klamm.broker.authorizer.acls import AclBinding
from klamm.broker.authorizer.model import Operation, PatternType, Permission, ResourceType
from klamm.broker.authorizer.standard import StandardAuthorizer
from klamm.broker.context import Session

# Principals the ACLs are spread over: a broker shared by a few hundred applications.
PRINCIPALS = 200
# Distinct questions asked in turn (topics x operations): more than a CPU cache line's worth,
# as a broker serving many topics sees.
QUESTIONS = 256


def build(count: int) -> tuple[StandardAuthorizer, list[AclBinding], list[tuple[str, str]]]:
    """An authorizer holding `count` ACLs, the same ACLs as a list, and (principal, topic)
    pairs that an ALLOW covers."""
    acls: list[AclBinding] = []
    asked: list[tuple[str, str]] = []
    for i in range(count):
        principal = f"User:app-{i % PRINCIPALS}"
        kind = i % 4
        if kind == 0:
            acls.append(AclBinding(ResourceType.TOPIC, f"orders-{i}", PatternType.LITERAL,
                                   principal, "*", Operation.WRITE, Permission.ALLOW))  # fmt: skip
            asked.append((principal, f"orders-{i}"))
        elif kind == 1:
            acls.append(AclBinding(ResourceType.TOPIC, f"team-{i}-", PatternType.PREFIXED,
                                   principal, "*", Operation.READ, Permission.ALLOW))  # fmt: skip
            asked.append((principal, f"team-{i}-events"))
        elif kind == 2:
            acls.append(AclBinding(ResourceType.GROUP, f"group-{i}", PatternType.LITERAL,
                                   principal, "*", Operation.READ, Permission.ALLOW))  # fmt: skip
        else:
            acls.append(AclBinding(ResourceType.TOPIC, f"audit-{i}", PatternType.LITERAL,
                                   principal, "10.0.0.9", Operation.ALL,
                                   Permission.DENY))  # fmt: skip
    acls.append(AclBinding(ResourceType.TOPIC, "*", PatternType.LITERAL, "User:*", "*",
                           Operation.DESCRIBE, Permission.ALLOW))  # fmt: skip
    authorizer = StandardAuthorizer()
    for acl in acls:
        authorizer.add(acl)
    return authorizer, acls, asked


def linear(acls: list[AclBinding], principal: str, host: str, op: Operation, name: str) -> bool:
    """Every ACL examined for each question: StandardAuthorizer's rules for READ and WRITE
    (implied operations, which only DESCRIBE and DESCRIBE_CONFIGS have, left out)."""
    allowed = False
    for a in acls:
        if a.resource_type != ResourceType.TOPIC:
            continue
        if a.pattern_type == PatternType.LITERAL:
            if a.name != name and a.name != "*":
                continue
        elif not name.startswith(a.name):
            continue
        if a.principal not in (principal, "User:*") or a.host not in (host, "*"):
            continue
        if a.operation not in (Operation.ALL, op):
            continue
        if a.permission == Permission.DENY:
            return False
        allowed = True
    return allowed  # no ALLOW applies: denied (allow.everyone.if.no.acl.found is false)


def _rate(work: Callable[[], object], seconds: float) -> float:
    calls, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(100):
            work()
        calls += 100
    return calls / elapsed


def main(argv: list[str] | None = None, console: Console | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acls", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5, help="per measurement and round")
    args = parser.parse_args(argv)
    console = console or Console()
    authorizer, acls, asked = build(args.acls)
    questions = [
        (Session(peer="10.0.0.1:5000", principal=p), Operation.READ if "team" in t else
         Operation.WRITE, t)
        for p, t in asked[:: max(1, len(asked) // QUESTIONS)][:QUESTIONS]
    ]  # fmt: skip
    assert all(authorizer.authorize(s, op, ResourceType.TOPIC, t) for s, op, t in questions)
    assert all(linear(acls, s.principal or "", "10.0.0.1", op, t) for s, op, t in questions), (
        "the linear scan disagrees"
    )
    state = {"i": 0}

    def next_question() -> tuple[Session, Operation, str]:
        state["i"] = (state["i"] + 1) % len(questions)
        return questions[state["i"]]

    def cached() -> None:
        s, op, t = next_question()
        authorizer.authorize(s, op, ResourceType.TOPIC, t)

    def uncached() -> None:
        s, op, t = next_question()
        authorizer.clear_cache()
        authorizer.authorize(s, op, ResourceType.TOPIC, t)

    def scan() -> None:
        s, op, t = next_question()
        linear(acls, s.principal or "", "10.0.0.1", op, t)

    work = {"cached": cached, "indexed": uncached, "linear scan": scan}
    runs: dict[str, list[float]] = {name: [] for name in work}
    for _ in range(args.rounds):
        for name, fn in work.items():
            seconds = args.seconds if name != "linear scan" else max(args.seconds / 5, 0.05)
            runs[name].append(_rate(fn, seconds))
    table = Table(title=f"authorize() with {len(acls):,} ACLs ({args.rounds} interleaved rounds)")
    for column in ("", "calls/s median", "range", "µs/call", "vs linear scan"):
        table.add_column(column, justify="right" if column else "left")
    base = statistics.median(runs["linear scan"])
    for name, rates in runs.items():
        median = statistics.median(rates)
        table.add_row(name, f"{median:,.0f}", f"{min(rates):,.0f}-{max(rates):,.0f}",
                      f"{1e6 / median:.2f}", f"{median / base:,.0f}x")  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    main()
