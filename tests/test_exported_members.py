"""The public surface is exactly what `__all__` says (httpx's tests/test_exported_members.py).

For klamm and each public subpackage that declares `__all__`: every name in it exists, and every
public name the package holds is in it. A helper imported into an `__init__` without being meant
for users fails here, and so does a name added to `__all__` that the package does not define.
Submodules are not names of the surface (they appear in a package's namespace once imported).
"""

from __future__ import annotations
import __future__

import importlib
import pkgutil
import types

import pytest

import klamm

# The packages users import from; each declares `__all__`.
PUBLIC = (
    "klamm",
    "klamm.client",
    "klamm.console",
    "klamm.patterns",
    "klamm.schema",
    "klamm.storage",
    "klamm.testing",
)

# Dunder names that are part of the surface where `__all__` lists them.
PUBLIC_DUNDERS = {"__version__"}

# The promises of DESIGN.md and the README: renaming one of these breaks users' code.
CONTRACT = {
    "klamm": {
        "Kafka",
        "Message",
        "CompressionTypes",
        "PartitionAssigners",
        "RetryPolicy",
        "Events",
        "KafkaError",
        "__version__",
    },
    "klamm.patterns": {"idempotent", "SQLiteStore", "PostgresStore"},
    "klamm.testing": {"EmbeddedBroker", "FakeClock"},
}


def _surface(module: types.ModuleType) -> set[str]:
    """The names `module` holds that a user would take for its public API."""
    names = set()
    for name, value in vars(module).items():
        if name.startswith("_") and name not in PUBLIC_DUNDERS:
            continue
        if isinstance(value, types.ModuleType) and value.__name__.startswith(module.__name__ + "."):
            continue  # a submodule, bound by its import
        if isinstance(value, __future__._Feature):
            continue  # `from __future__ import annotations`
        names.add(name)
    return names


@pytest.mark.parametrize("package", PUBLIC)
def test_all_is_exactly_the_public_names(package: str) -> None:
    module = importlib.import_module(package)
    exported = list(module.__all__)
    assert len(exported) == len(set(exported)), f"{package}.__all__ lists a name twice"
    missing = sorted(name for name in exported if not hasattr(module, name))
    assert missing == [], f"{package}.__all__ lists names it does not define: {missing}"
    unlisted = sorted(_surface(module) - set(exported))
    assert unlisted == [], f"{package} holds public names missing from __all__: {unlisted}"


@pytest.mark.parametrize("package", sorted(CONTRACT))
def test_contract_names_are_exported(package: str) -> None:
    module = importlib.import_module(package)
    assert CONTRACT[package] <= set(module.__all__)


def test_every_package_with_all_is_checked() -> None:
    """A new module or subpackage of klamm that declares a public surface is held to it too."""
    declared = {"klamm"}
    for info in pkgutil.iter_modules(klamm.__path__, "klamm."):
        if info.name == "klamm.__main__":
            continue  # importing it runs the CLI
        if hasattr(importlib.import_module(info.name), "__all__"):
            declared.add(info.name)
    assert declared == set(PUBLIC)


def test_a_stray_public_name_is_caught() -> None:
    """The check itself: a helper imported into a package shows up as unlisted."""
    module = types.ModuleType("klamm.example")
    module.__all__ = ["Thing"]  # type: ignore[attr-defined]
    module.Thing = object  # type: ignore[attr-defined]
    module.helper = len  # type: ignore[attr-defined]
    module.sub = types.ModuleType("klamm.example.sub")  # type: ignore[attr-defined]
    module._private = 1  # type: ignore[attr-defined]
    assert _surface(module) - set(module.__all__) == {"helper"}
