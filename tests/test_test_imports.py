"""Test helpers live in one place and are imported one way.

Public helpers are in `klamm.testing` (EmbeddedBroker, FakeClock); private ones in a
`<area>_helpers.py` module (or wire.py, auth_support.py) beside the tests that use them. A test
never imports from a conftest (pytest loads those itself, and a second import runs them twice
under another name) nor from another test module (its tests would be collected twice), and test
code is imported absolutely, `from tests.storage.storage_helpers import ...`, never through the
directory pytest happens to put on sys.path.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _test_sources() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if "node_modules" not in p.parts)


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, "." * node.level + (node.module or "")))
    return found


def test_tests_import_helpers_absolutely_and_never_from_conftest_or_test_modules() -> None:
    local = {p.stem for p in _test_sources()}  # names a bare import of test code would use
    problems = []
    for path in _test_sources():
        where = path.relative_to(TESTS.parent)
        for line, module in _imported_modules(path):
            last = module.rsplit(".", 1)[-1]
            if module.startswith("."):
                problems.append(f"{where}:{line}: relative import {module}")
            elif last == "conftest":
                problems.append(f"{where}:{line}: imports from a conftest: {module}")
            elif module.startswith("tests.") and last.startswith("test_"):
                problems.append(f"{where}:{line}: imports from a test module: {module}")
            elif not module.startswith("tests") and module.split(".")[0] in local:
                problems.append(f"{where}:{line}: bare import of test code: {module}")
    assert problems == [], "\n".join(problems)
