"""`klamm demo` runs the seed scenario to a clean finish on the embedded broker."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from klamm.cli.demo import scenario


async def test_demo_scenario_succeeds(kafka_broker: Any) -> None:
    console = Console(record=True, width=120)
    assert await scenario(console, kafka_broker.bootstrap, orders=24, timeout_s=30) == 0
    text = console.export_text()
    assert "payment rows in SQLite (no duplicates)" in text
    assert "after 2 retries: ValueError" in text
