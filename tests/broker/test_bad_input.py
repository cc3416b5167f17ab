"""Bad input gets a clear error and loses nothing; the broker keeps serving everyone else."""

from __future__ import annotations

import struct
import time
from typing import Any

import pytest

from klamm.protocol.errors import ErrorCode
from klamm.protocol.record_batch import Record, RecordBatch, build_batch
from klamm.testing import EmbeddedBroker
from tests.broker.broker_helpers import create_topics, one_record_batch, produce
from tests.broker.wire import Wire


@pytest.fixture(scope="module")
def broker():
    with EmbeddedBroker(max_request_bytes=4 * 1024 * 1024) as b:
        yield b


def _metadata_ok(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        response = wire.request(3, 1, topics=[])
        assert response.brokers[0].port == broker.port


def _list_offsets(wire: Wire, topic: str, timestamps: dict[int, int]) -> Any:
    """ListOffsets v7: partition -> timestamp; answers the partitions in request order."""
    response = wire.request(
        2, 7, replica_id=-1, isolation_level=0,
        topics=[{"name": topic, "partitions": [
            {"partition_index": p, "current_leader_epoch": -1, "timestamp": ts}
            for p, ts in timestamps.items()]}],
    )  # fmt: skip
    return response.topics[0].partitions


def _topic_exists(wire: Wire, name: str) -> bool:
    response = wire.request(
        3, 9, topics=[{"name": name}], allow_auto_topic_creation=False,
        include_cluster_authorized_operations=False, include_topic_authorized_operations=False,
    )  # fmt: skip
    return bool(response.topics[0].error_code == ErrorCode.none)


def test_garbage_frame_closes_only_that_connection(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        wire.send_raw(b"\x00\x03")  # shorter than any request header
        assert wire.is_closed()
    _metadata_ok(broker)


def test_oversized_frame_is_refused_without_buffering_it(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        wire.sock.sendall(struct.pack(">i", 64 * 1024 * 1024) + b"\0" * 100)
        assert wire.is_closed()
    _metadata_ok(broker)


def test_unknown_api_key_closes_the_connection_as_kafka_does(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        wire.send_raw(struct.pack(">hhih", 999, 0, 1, -1))
        assert wire.is_closed()
    _metadata_ok(broker)


def test_unknown_api_versions_version_gets_a_v0_error_reply(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        wire.send_raw(struct.pack(">hhih", 18, 77, 42, -1) + b"future")
        frame = wire.recv_frame()
        correlation, error, count = struct.unpack_from(">ihi", frame, 0)
        assert (correlation, error) == (42, ErrorCode.unsupported_version)
        keys = {struct.unpack_from(">h", frame, 10 + 6 * i)[0] for i in range(count)}
        assert {0, 1, 3, 18} <= keys
        # the connection stays usable: the client retries with a version we speak
        assert wire.request(18, 0).error_code == ErrorCode.none


def test_api_versions_rejects_bad_client_software_name(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        response = wire.request(
            18, 3, client_software_name="bad name!", client_software_version="1"
        )
        assert response.error_code == ErrorCode.invalid_request


def test_corrupt_batches_are_refused_and_nothing_is_appended(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        wire.request(3, 4, topics=[{"name": "bad-input"}], allow_auto_topic_creation=True)
        good = one_record_batch()
        corrupt = bytearray(good)
        corrupt[-1] ^= 0xFF
        assert produce(wire, "bad-input", bytes(corrupt))[0] == ErrorCode.corrupt_message
        assert produce(wire, "bad-input", good[:-5])[0] == ErrorCode.corrupt_message
        too_big = one_record_batch(b"x" * 2_000_000)
        assert produce(wire, "bad-input", too_big)[0] == ErrorCode.message_too_large
        assert produce(wire, "bad-input", good + good)[0] == ErrorCode.invalid_record
        # the log holds only what was accepted
        assert produce(wire, "bad-input", good) == (ErrorCode.none, 0)
        assert produce(wire, "bad-input", good) == (ErrorCode.none, 1)


def test_invalid_topic_names(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        response = wire.request(
            3, 4, topics=[{"name": "bad/name"}, {"name": "x" * 250}], allow_auto_topic_creation=True
        )
        assert [t.error_code for t in response.topics] == [ErrorCode.invalid_topic_exception] * 2
        created = wire.request(
            19, 4, topics=[{"name": "..", "num_partitions": 1, "replication_factor": 1,
                            "assignments": [], "configs": []}],
            timeout=1000, validate_only=False,
        )  # fmt: skip
        assert created.topics[0].error_code == ErrorCode.invalid_topic_exception


def test_produce_to_unknown_partition(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        assert (
            produce(wire, "never-created", one_record_batch())[0]
            == ErrorCode.unknown_topic_or_partition
        )


def test_produce_v2_message_format_is_refused_clearly(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        wire.send_raw(struct.pack(">hhih", 0, 2, 1, -1) + b"\0" * 10)
        assert wire.is_closed()
    _metadata_ok(broker)


def test_timestamps_far_in_the_future_are_refused(broker: EmbeddedBroker) -> None:
    """Kafka 4's message.timestamp.after.max.ms defaults to one hour."""
    future = int(time.time() * 1000) + 2 * 3600 * 1000
    batch = build_batch(RecordBatch(records=[Record(0, future, b"k", b"v")]))
    with Wire(broker.bootstrap) as wire:
        wire.request(3, 4, topics=[{"name": "ts-check"}], allow_auto_topic_creation=True)
        assert produce(wire, "ts-check", batch)[0] == ErrorCode.invalid_timestamp


@pytest.mark.parametrize("internal", ["__consumer_offsets", "__transaction_state"])
def test_produce_to_an_internal_topic_is_refused(broker: EmbeddedBroker, internal: str) -> None:
    """A client's record there would forge committed offsets or transaction state; one the
    coordinator cannot read used to stop the broker from starting again (Kafka refuses with
    INVALID_TOPIC_EXCEPTION, "Cannot append to internal topic")."""
    log = broker.broker.partition(internal, 0).log
    end = log.log_end_offset
    with Wire(broker.bootstrap) as wire:
        forged = build_batch(RecordBatch(records=[Record(0, int(time.time() * 1000), b"x", b"y")]))
        response = wire.request(
            0, 9, transactional_id=None, acks=-1, timeout=5000,
            topic_data=[{"name": internal, "partition_data": [{"index": 0, "records": forged}]}],
        )  # fmt: skip
        result = response.responses[0].partition_responses[0]
        assert result.error_code == ErrorCode.invalid_topic_exception
        assert result.error_message == f"Cannot append to internal topic {internal}"
        assert produce(wire, internal, forged, acks=1)[0] == ErrorCode.invalid_topic_exception
    assert log.log_end_offset == end


@pytest.mark.parametrize("acks", [2, -2, 5])
def test_invalid_acks_are_refused_and_nothing_is_appended(
    broker: EmbeddedBroker, acks: int
) -> None:
    name = f"acks-{acks}"
    with Wire(broker.bootstrap) as wire:
        assert create_topics(wire, name).topics[0].error_code == ErrorCode.none
        assert produce(wire, name, one_record_batch(), acks=acks) == (
            ErrorCode.invalid_required_acks,
            -1,
        )
        # Kafka looks for the partition before it looks at acks
        assert produce(wire, "never-created", one_record_batch(), acks=acks)[0] == (
            ErrorCode.unknown_topic_or_partition
        )
        assert produce(wire, name, one_record_batch()) == (
            ErrorCode.none,
            0,
        )  # nothing went before it


def test_create_topics_with_a_duplicated_name_creates_nothing(broker: EmbeddedBroker) -> None:
    """Which of the two entries would be meant? Kafka answers the name once, with
    INVALID_REQUEST, and creates the other topics of the request."""
    with Wire(broker.bootstrap) as wire:
        response = create_topics(wire, "dup-twice", "dup-single", "dup-twice")
        answers = {t.name: (t.error_code, t.error_message) for t in response.topics}
        assert len(response.topics) == 2
        assert answers["dup-twice"] == (ErrorCode.invalid_request, "Duplicate topic name.")
        assert answers["dup-single"] == (ErrorCode.none, None)
        assert not _topic_exists(wire, "dup-twice")
        assert _topic_exists(wire, "dup-single")


def test_list_offsets_over_an_unreadable_batch_fails_only_that_partition(
    broker: EmbeddedBroker,
) -> None:
    """A stored batch that cannot be decoded (a broken CRC here) fails the timestamp lookups of
    its partition with CORRUPT_MESSAGE; other partitions are answered and the connection stays
    open (it used to be closed on every attempt)."""
    now = int(time.time() * 1000)
    unreadable = bytearray(build_batch(RecordBatch(records=[Record(0, now + 1000, b"k", b"v")])))
    unreadable[-1] ^= 0xFF
    with Wire(broker.bootstrap) as wire:
        create_topics(wire, "unreadable", partitions=2)
        # Planted under the produce path's validation, as a damaged disk or an older broker
        # would leave it; the good batch after it moves the high watermark past both.
        broker.broker.partition("unreadable", 0).log.append(unreadable)
        good = build_batch(RecordBatch(records=[Record(0, now, b"k", b"v")]))
        for partition in (0, 1):
            response = wire.request(
                0, 7, transactional_id=None, acks=-1, timeout=5000,
                topic_data=[{"name": "unreadable",
                             "partition_data": [{"index": partition, "records": good}]}],
            )  # fmt: skip
            assert response.responses[0].partition_responses[0].error_code == ErrorCode.none
        for timestamp in (0, -3):  # the first record at or after 0; the largest timestamp
            bad, fine = _list_offsets(wire, "unreadable", {0: timestamp, 1: timestamp})
            assert (bad.error_code, bad.offset) == (ErrorCode.corrupt_message, -1)
            assert (fine.error_code, fine.offset) == (ErrorCode.none, 0)
        (latest,) = _list_offsets(wire, "unreadable", {0: -1})
        assert (latest.error_code, latest.offset) == (ErrorCode.none, 2)


def test_delete_topics_and_create_partitions_refuse_a_duplicated_name(
    broker: EmbeddedBroker,
) -> None:
    """As CreateTopics: the name is answered once with INVALID_REQUEST and left alone (Kafka's
    ControllerApis.deleteTopics and handleCreatePartitionsRequest)."""
    with Wire(broker.bootstrap) as wire:
        create_topics(wire, "dup-del", "dup-del-other", "dup-grow")
        response = wire.request(20, 5, topic_names=["dup-del", "dup-del-other", "dup-del"],
                                timeout=5000)  # fmt: skip
        answers = {r.name: (r.error_code, r.error_message) for r in response.responses}
        assert answers == {
            "dup-del": (ErrorCode.invalid_request, "Duplicate topic name."),
            "dup-del-other": (ErrorCode.none, None),
        }
        assert _topic_exists(wire, "dup-del") and not _topic_exists(wire, "dup-del-other")
        grow = [{"name": "dup-grow", "count": 3, "assignments": None}] * 2
        response = wire.request(37, 1, topics=grow, timeout=5000, validate_only=False)
        [result] = response.results
        assert (result.error_code, result.error_message) == (
            ErrorCode.invalid_request,
            "Duplicate topic in request.",
        )
