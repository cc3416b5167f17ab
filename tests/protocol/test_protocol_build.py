"""`build()`: fields of other versions are dropped quietly, a name no version has is an error."""

from __future__ import annotations

from typing import Any

import pytest
from kio.schema.describe_configs.v1.response import DescribeConfigsResponse as DescribeConfigsV1
from kio.schema.produce.v3.response import ProduceResponse as ProduceV3
from kio.schema.produce.v9.response import ProduceResponse as ProduceV9

from klamm.protocol.build import build
from klamm.protocol.errors import ErrorCode

PARTITION = {"index": 0, "error_code": 0, "base_offset": 7, "log_append_time": -1}


def test_a_field_of_another_version_is_left_out() -> None:
    # record_errors and error_message exist from v8: a v3 response simply does not carry them,
    # which is how a handler describes its response once for every version it serves.
    partition: dict[str, Any] = {
        **PARTITION,
        "log_start_offset": 0,
        "record_errors": [],
        "error_message": None,
    }
    response = build(
        ProduceV3,
        responses=[{"name": "t", "partition_responses": [partition]}],
        throttle_time=0,
    )
    assert response.responses[0].partition_responses[0].base_offset == 7
    assert not hasattr(response.responses[0].partition_responses[0], "record_errors")


def test_a_top_level_name_no_version_has_is_refused() -> None:
    with pytest.raises(TypeError, match="throttle_time_ms"):
        build(ProduceV9, responses=[], throttle_time_ms=0)


def test_a_nested_name_no_version_has_is_refused() -> None:
    partition = {**PARTITION, "log_start_offset": 0, "base_ofset": 7}
    with pytest.raises(TypeError, match=r"PartitionProduceResponse.*base_ofset"):
        build(ProduceV9, responses=[{"name": "t", "partition_responses": [partition]}])


def test_a_field_only_a_version_we_do_not_serve_had_is_refused() -> None:
    # DescribeConfigs v0's is_default: kio (and klamm) serve v1 and up, so it is never sent.
    entry = {
        "name": "retention.ms",
        "value": "1",
        "read_only": False,
        "config_source": 5,
        "is_sensitive": False,
        "synonyms": [],
        "is_default": False,
    }
    with pytest.raises(TypeError, match="is_default"):
        build(
            DescribeConfigsV1,
            throttle_time=0,
            results=[
                {
                    "error_code": ErrorCode.none,
                    "error_message": None,
                    "resource_type": 2,
                    "resource_name": "t",
                    "configs": [entry],
                }
            ],
        )
