from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from klamm.storage.config import LogConfig
from klamm.storage.log import PartitionLog
from klamm.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def open_log(tmp_path: Path, clock: FakeClock) -> Callable[..., PartitionLog]:
    def opener(config: LogConfig | None = None, directory: Path | None = None) -> PartitionLog:
        return PartitionLog.open(directory or tmp_path / "t-0", config or LogConfig(), clock)

    return opener
