"""Shared fixtures: the project's own tests run against a real klamm broker."""

from __future__ import annotations

import uuid

import pytest

pytest_plugins = ["klamm.testing.pytest_plugin"]


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic and group names on the shared broker."""
    return uuid.uuid4().hex[:10]
