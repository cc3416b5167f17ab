"""The operator commands talk to clusters only through Kafka clients (DESIGN.md §1).

They must work against any Kafka cluster, so they never import klamm's broker or storage; the one
exception is `klamm bench --embedded`, which may start a `klamm.testing.EmbeddedBroker`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parents[2] / "src" / "klamm" / "cli"
OPERATOR_MODULES = ["_common", "topics", "produce", "consume", "groups", "configs", "acls", "bench"]
FORBIDDEN = ("klamm.broker", "klamm.storage", "klamm.protocol")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", OPERATOR_MODULES)
def test_operator_commands_use_only_kafka_clients(module: str) -> None:
    imports = _imports(CLI / f"{module}.py")
    assert not [name for name in imports if name.startswith(FORBIDDEN)]
    if module != "bench":
        assert not [name for name in imports if name.startswith("klamm.testing")]
