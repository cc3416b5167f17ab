"""DESIGN.md §2: the layers are visible from the tree and enforced here.

protocol imports nothing of ours; storage imports protocol only; the client imports neither broker
nor storage; the broker never imports the client; the console imports the client only. Checked
on the import statements of every module, so a violation fails even if the module is never
imported at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "klamm"

ALLOWED = {
    "protocol": {"protocol"},
    "storage": {"protocol", "storage"},
    "broker": {"protocol", "storage", "broker"},
    "client": {"client"},
    # DESIGN.md §2: the registry reaches Kafka as a client does, never through broker internals.
    "schema": {"schema", "client", "protocol"},
    # The web console works against any cluster: it reaches one through the client only.
    "console": {"client", "console"},
}


def _klamm_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    layers: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "klamm" and len(parts) > 1:
                layers.add(parts[1])
    return layers


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    violations = []
    for path in sorted((SRC / layer).rglob("*.py")):
        bad = _klamm_imports(path) - ALLOWED[layer]
        if bad:
            violations.append(
                f"{path.relative_to(SRC)} imports klamm.{', klamm.'.join(sorted(bad))}"
            )
    assert not violations, "\n".join(violations)


def test_the_check_sees_imports() -> None:
    """Guard against a checker that passes because it finds nothing."""
    assert "protocol" in _klamm_imports(SRC / "storage" / "log.py")
    assert "storage" in _klamm_imports(SRC / "broker" / "node.py")
    assert "schema" in _klamm_imports(SRC / "schema" / "service.py")
    assert "client" in _klamm_imports(SRC / "console" / "cluster.py")
