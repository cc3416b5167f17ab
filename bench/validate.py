"""What checking a produced batch costs the broker, per codec.

    python -m bench.validate [--records 1000] [--value-bytes 100] [--seconds 1]

For a batch of `--records` records of `--value-bytes` bytes (keyed, as librdkafka sends them), it
times the header checks alone (all produce did before issue 11: magic, CRC, counts) and the full
produce validation (header checks, inflating, walking every record: record_batch.validate_records),
and prints batches/s, MB/s of record data and µs per record. The last row is the worst batch a
default topic accepts: max.message.bytes (1 MiB) of zstd inflating to the most minimal records.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from klamm.protocol.compression import Compression, compress
from klamm.protocol.record_batch import (
    HEADER_SIZE,
    Record,
    RecordBatch,
    build_batch,
    check_produced_header,
    crc_of,
    validate_records,
)

MAX_MESSAGE_BYTES = 1024 * 1024 + 12  # Kafka's max.message.bytes default


def _rate(work: Callable[[], object], seconds: float) -> float:
    """Calls per second of `work`, over at least `seconds` (best of three thirds)."""
    best = 0.0
    for _ in range(3):
        calls, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds / 3:
            work()
            calls += 1
        best = max(best, calls / elapsed)
    return best


def _varint(value: int) -> bytes:
    out, raw = bytearray(), (value << 1) ^ (value >> 63)
    while raw >= 0x80:
        out.append(raw & 0x7F | 0x80)
        raw >>= 7
    out.append(raw)
    return bytes(out)


def worst_batch() -> tuple[bytes, int]:
    """A valid zstd batch of minimal records (no key, no value) as large as a default topic
    accepts, and its record count."""
    count = 1_000_000
    while True:
        body = b"".join(
            _varint(5 + len(d)) + b"\0\0" + d + b"\x01\x01\0" for d in map(_varint, range(count))
        )
        out = bytearray(build_batch(RecordBatch([Record(0, 1, None, None)]))[:HEADER_SIZE])
        out += compress(Compression.ZSTD, body)
        if len(out) <= MAX_MESSAGE_BYTES:
            break
        count = count * 9 // 10
    out[8:12] = (len(out) - 12).to_bytes(4, "big")
    out[21:23] = int(Compression.ZSTD).to_bytes(2, "big")
    out[23:27] = (count - 1).to_bytes(4, "big")
    out[57:61] = count.to_bytes(4, "big")
    out[17:21] = crc_of(out, 0, len(out)).to_bytes(4, "big")
    return bytes(out), count


def main(argv: list[str] | None = None, console: Console | None = None) -> None:
    parser = argparse.ArgumentParser(description="produce-time batch validation cost")
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=1.0, help="per measurement")
    args = parser.parse_args(argv)
    console = console or Console()
    table = Table(
        title=f"produce validation: {args.records} records x {args.value_bytes} B per batch"
    )
    for column in ("codec", "batch bytes", "header only batches/s", "full batches/s",
                   "full MB/s", "full µs/record"):  # fmt: skip
        table.add_column(column, justify="right")
    now = int(time.time() * 1000)
    records = [
        Record(i, now + i // 10, f"key-{i % 97}".encode(), bytes([65 + i % 26]) * args.value_bytes)
        for i in range(args.records)
    ]
    data_bytes = sum(len(r.key or b"") + len(r.value or b"") for r in records)
    for codec in Compression:
        batch = build_batch(RecordBatch(records, compression=codec))
        header = check_produced_header(batch, 1 << 30)
        before = _rate(lambda b=batch: check_produced_header(b, 1 << 30), args.seconds)
        after = _rate(lambda b=batch, h=header: validate_records(b, h), args.seconds)
        table.add_row(
            codec.name.lower(), f"{len(batch):,}", f"{before:,.0f}", f"{after:,.0f}",
            f"{after * data_bytes / 1e6:,.0f}", f"{1e6 / after / args.records:.2f}",
        )  # fmt: skip
    worst, count = worst_batch()
    header = check_produced_header(worst, MAX_MESSAGE_BYTES)
    started = time.perf_counter()
    validate_records(worst, header)
    took = time.perf_counter() - started
    table.add_row(
        "zstd, worst", f"{len(worst):,}", "", f"{1 / took:.2f}", "", f"{took * 1e6 / count:.2f}"
    )
    console.print(table)
    console.print(
        f"worst batch: {count:,} records in {len(worst):,} bytes, validated in {took * 1e3:.0f} ms "
        "(in a worker thread: produce walks at most 20,000 records a request on the event loop)"
    )


if __name__ == "__main__":
    main()
