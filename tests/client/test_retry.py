from __future__ import annotations

import pytest

from klamm import ConfigError, RetryPolicy


def test_defaults_are_kafkajs() -> None:
    p = RetryPolicy()
    assert (p.max_retry_time_ms, p.initial_retry_time_ms, p.factor, p.multiplier, p.retries) == (
        30_000,
        300,
        0.2,
        2.0,
        5,
    )


def test_delays_without_jitter_double_and_cap() -> None:
    policy = RetryPolicy(initial_retry_time_ms=100, retries=8, max_retry_time_ms=3_000)
    middle = list(policy.delays_ms(rng=lambda lo, hi: (lo + hi) / 2))
    assert middle == [100, 200, 400, 800, 1600, 3000, 3000, 3000]


def test_jitter_bounds() -> None:
    policy = RetryPolicy(initial_retry_time_ms=100, retries=3, factor=0.2)
    low = list(policy.delays_ms(rng=lambda lo, hi: lo))
    high = list(policy.delays_ms(rng=lambda lo, hi: hi))
    assert low == [80, 128, 206]  # 80; ceil(64)*2; ceil(102.4)*2
    assert high == [120, 288, 692]  # 120; ceil(144)*2; ceil(345.6)*2


def test_random_delays_stay_within_bounds() -> None:
    policy = RetryPolicy(initial_retry_time_ms=50, retries=20, max_retry_time_ms=1_000)
    delays = list(policy.delays_ms())
    assert len(delays) == 20
    assert 40 <= delays[0] <= 60
    assert all(0 < d <= 1_000 for d in delays)


def test_zero_retries_means_no_delay() -> None:
    assert list(RetryPolicy(retries=0).delays_ms()) == []


@pytest.mark.parametrize(
    "kwargs", [{"retries": -1}, {"factor": 1.0}, {"multiplier": 0.5}, {"initial_retry_time_ms": -1}]
)
def test_invalid_policies(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_librdkafka_backoff_bounds() -> None:
    conf = RetryPolicy(initial_retry_time_ms=100, max_retry_time_ms=5_000).librdkafka_config()
    assert conf == {"retry.backoff.ms": 100, "retry.backoff.max.ms": 5_000}
