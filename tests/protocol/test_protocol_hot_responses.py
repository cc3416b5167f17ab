"""protocol/hot_responses.py encodes exactly what kio encodes for the same response values."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klamm.protocol.build import build
from klamm.protocol.hot_responses import (
    FIRST_VERSION,
    LAST_VERSION,
    PRODUCE_FIRST_VERSION,
    PRODUCE_LAST_VERSION,
    fetch_response,
    produce_response,
)
from klamm.protocol.messages import RequestHeader, encode_response, response_type

i32s = st.integers(min_value=-(2**31), max_value=2**31 - 1)
i64s = st.integers(min_value=-(2**63), max_value=2**63 - 1)
error_codes = st.sampled_from([0, 1, 3, 6, 56, 74])
partitions = st.fixed_dictionaries(
    {
        "partition_index": i32s,
        "error_code": error_codes,
        "high_watermark": i64s,
        "last_stable_offset": i64s,
        "log_start_offset": i64s,
        "aborted_transactions": st.one_of(
            st.none(),
            st.lists(
                st.fixed_dictionaries({"producer_id": i64s, "first_offset": i64s}), max_size=3
            ),
        ),
        "preferred_read_replica": i32s,
        "records": st.one_of(st.none(), st.binary(max_size=300)),
    }
)
topics = st.lists(
    st.fixed_dictionaries(
        {
            "topic": st.text(min_size=1, max_size=30),
            "partitions": st.lists(partitions, max_size=4),
        }
    ),
    max_size=3,
)


@pytest.mark.parametrize("version", range(FIRST_VERSION, LAST_VERSION + 1))
@settings(max_examples=60, deadline=None)
@given(topics=topics, throttle=st.integers(0, 2**31 - 1), error=error_codes, session=i32s)
def test_fetch_response_matches_kio(version, topics, throttle, error, session) -> None:
    header = RequestHeader(1, version, 12345, "client")
    fields = {
        "throttle_time": datetime.timedelta(milliseconds=throttle),
        "error_code": error,
        "session_id": session,
        "responses": topics,
    }
    expected = encode_response(header, build(response_type(1, version), **fields))
    fast = encode_response(header, fetch_response(version, throttle, error, session, topics))
    assert fast == expected


def test_versions_outside_the_fast_range_are_refused() -> None:
    with pytest.raises(ValueError, match="v3"):
        fetch_response(3, 0, 0, 0, [])


# Milliseconds that survive kio's datetime round trip (what the broker's clock gives), or -1.
append_times = st.one_of(st.just(-1), st.integers(min_value=0, max_value=4_102_444_800_000))
produced = st.fixed_dictionaries(
    {
        "index": i32s,
        "error_code": error_codes,
        "base_offset": i64s,
        "log_append_time": append_times,
        "log_start_offset": i64s,
        "record_errors": st.lists(
            st.fixed_dictionaries(
                {
                    "batch_index": i32s,
                    "batch_index_error_message": st.one_of(st.none(), st.text(max_size=20)),
                }
            ),
            max_size=3,
        ),
        "error_message": st.one_of(st.none(), st.text(max_size=30)),
    }
)
produce_topics = st.lists(
    st.tuples(st.text(min_size=1, max_size=30), st.lists(produced, max_size=4)), max_size=3
)


def _kio_partition(p: dict) -> dict:
    ms = p["log_append_time"]
    when = None if ms < 0 else datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return {**p, "log_append_time": when}


@pytest.mark.parametrize("version", range(PRODUCE_FIRST_VERSION, PRODUCE_LAST_VERSION + 1))
@settings(max_examples=60, deadline=None)
@given(topics=produce_topics, throttle=st.integers(0, 2**31 - 1))
def test_produce_response_matches_kio(version, topics, throttle) -> None:
    header = RequestHeader(0, version, 777, "client")
    fields = {
        "throttle_time": datetime.timedelta(milliseconds=throttle),
        "responses": [
            {"name": name, "partition_responses": [_kio_partition(p) for p in partitions]}
            for name, partitions in topics
        ],
    }
    expected = encode_response(header, build(response_type(0, version), **fields))
    fast = encode_response(header, produce_response(version, throttle, topics))
    assert fast == expected
