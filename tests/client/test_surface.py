"""The layering rule: the client never imports broker or storage (the exported names are
checked by tests/test_exported_members.py)."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import klamm

CLIENT = pathlib.Path(klamm.__file__).parent / "client"


def test_client_sources_do_not_import_broker_or_storage() -> None:
    offenders = []
    for path in CLIENT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for n in names:
                if n.startswith(("klamm.broker", "klamm.storage")):
                    offenders.append(f"{path.name}: {n}")
    assert offenders == []


def test_importing_the_client_loads_no_broker_module() -> None:
    code = (
        "import sys, klamm, klamm.patterns; "
        "bad = [m for m in sys.modules if m.startswith(('klamm.broker', 'klamm.storage'))]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_client_files_stay_small() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in CLIENT.rglob("*.py")}
    assert max(sizes.values()) < 800, sizes
