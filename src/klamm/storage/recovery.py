"""What recovery does in a partition directory before the log is loaded: finish or roll back a
segment replacement a crash interrupted, and set damage aside (never unlink it, and put back in
the log whatever intact batches follow it). `PartitionLog.open` (log.py) decides when; this
module does the file work. The damage policy is described in log.py's docstring.

Files (inside the partition directory):

    damaged/                                       created on first use; never read by klamm
      <segment stem>.log.<from>-<to>.<ms>.damaged  bytes [from, to) cut from that segment file,
                                                   copied here (and fsynced) before the cut
      <segment stem>.<suffix>.<ms>.damaged         a whole segment file set aside (renamed)
      <checkpoint name>.<ms>.damaged               an implausible checkpoint file (renamed)

      <base>-<end>.log.cleaned                     a replacement for the segments with base
                                                   offsets in [base, end), being written
      <base>-<end>.log.swap                        the same file once complete and fsynced

(the last two are in the partition directory itself, not in damaged/; see "Segment
replacement" below.)

Nothing here ends in `.log`, `.tmp` or `.deleted`, so no scan of the partition directory
mistakes a set-aside file for a segment or a leftover. An operator may inspect them (`klamm`
reads them like any segment: they are record batches back to back from a batch boundary) and
delete them; deleting the topic deletes them with it.

Crash behaviour: every step is ordered so that a crash at any point loses nothing and the next
`open` redoes the step. Cut bytes are copied and fsynced before the segment is truncated; a
salvaged segment is written as `<base>.log.tmp`, fsynced and renamed (a leftover `.tmp` is
removed by the next scan, which then salvages again); if a crash comes after the rename but
before the truncation, the next open finds the salvaged segment already there and only cuts.

Segment replacement (PartitionLog.replace_segments, which the cleaner calls): the rename
`.cleaned` -> `.swap` (then fsync of the directory) is the commit point. After it the old
segments are deleted and `.swap` is renamed to `<base>.log`. `recover_interrupted_swaps()`,
called by PartitionLog.open before it scans the directory, deletes every `.cleaned` file (roll
back: the old segments are intact) and completes every `.swap` (roll forward: delete the
segment files in its range, which may already be gone, then rename it). Both steps are
idempotent, so a crash during recovery is recovered the same way.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

from klamm.protocol.errors import InvalidRecordBatch
from klamm.protocol.record_batch import (
    HEADER,
    HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC_V2,
    BatchHeader,
    check_batch,
)
from klamm.storage.durable_files import fsync_dir
from klamm.storage.segment import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    MAX_RELATIVE_OFFSET,
    SEGMENT_FILE,
    TIME_INDEX_SUFFIX,
    TXN_INDEX_SUFFIX,
    LogSegment,
    segment_name,
)

__all__ = [
    "CLEANED_SUFFIX",
    "DAMAGED_DIR",
    "SWAP_SUFFIX",
    "check_cleaner_offset",
    "copy_aside",
    "find_resync",
    "move_aside",
    "read_checkpoint",
    "read_offset_file",
    "read_recovery_point",
    "recover_interrupted_swaps",
    "replacement_name",
    "set_aside_cut",
    "set_aside_segment",
    "write_segment_from",
]

log = logging.getLogger("klamm.storage")

DAMAGED_DIR = "damaged"
DAMAGED_SUFFIX = ".damaged"

# Damage is copied and searched in steps of this size: one read covers many batches, and
# memory stays flat on a 1 GiB segment.
CHUNK = 1 << 20
_MAGIC_AT = 16  # byte of the batch header holding the magic (after offset, length, epoch)
_MAGIC = bytes([MAGIC_V2])
_DECIMAL = re.compile(r"^-?[0-9]{1,19}$")  # a checkpoint's offset: at most an i64's digits

CLEANED_SUFFIX = ".log.cleaned"
SWAP_SUFFIX = ".log.swap"
_REPLACEMENT_FILE = re.compile(r"^(\d{20})-(\d{20})\.log\.(cleaned|swap)$")

Pread = Callable[[int, int], bytes]


def damaged_dir(directory: Path) -> Path:
    aside = directory / DAMAGED_DIR
    aside.mkdir(exist_ok=True)
    return aside


def _copy(pread: Pread, start: int, end: int, target: Path) -> None:
    """Copy [start, end) through `pread` into a new file `target`, fsynced."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        pos = start
        while pos < end:
            data = pread(pos, min(CHUNK, end - pos))
            if not data:
                break
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            pos += len(data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _all_zero(pread: Pread, start: int, end: int) -> bool:
    pos = start
    while pos < end:
        data = pread(pos, min(CHUNK, end - pos))
        if not data:
            return True
        if data.count(0) != len(data):
            return False
        pos += len(data)
    return True


def copy_aside(directory: Path, stem: str, pread: Pread, start: int, end: int,
               now_ms: int) -> Path | None:  # fmt: skip
    """Copy bytes [start, end) of segment `stem` into damaged/ before they are cut. None when
    they are all zero bytes (what a file system leaves after a crash: there is nothing to keep)."""
    if _all_zero(pread, start, end):
        return None
    aside = damaged_dir(directory)
    target = aside / f"{stem}.log.{start}-{end}.{now_ms}{DAMAGED_SUFFIX}"
    _copy(pread, start, end, target)
    fsync_dir(aside)
    return target


def move_aside(path: Path, now_ms: int) -> Path:
    """Rename `path` (in a partition directory) into damaged/, durably."""
    aside = damaged_dir(path.parent)
    target = aside / f"{path.name}.{now_ms}{DAMAGED_SUFFIX}"
    os.replace(path, target)
    fsync_dir(aside)
    fsync_dir(path.parent)
    return target


def find_resync(
    pread: Pread, start: int, end: int, expected: int, max_offset: int, *, allow_gaps: bool
) -> tuple[int, BatchHeader] | None:
    """The first position in (start, end) where an intact batch begins: magic 2, a length that
    fits, a valid CRC, and offsets from `expected` (where the log continues) up to
    `max_offset` (what the damaged segment could hold). Without `allow_gaps` its base offset
    may also exceed `expected` by at most the bytes skipped, since every offset of an
    uncompacted log costs at least one byte of record. Both bounds keep a garbage match (or a
    garbled base offset, which the CRC does not cover) from throwing the log end offset far
    ahead. The batch at `start` itself is never the answer (it is the damaged one)."""
    pos = start + 1
    while pos + HEADER_SIZE <= end:
        # A window of candidates plus the header bytes after the last one.
        buf = pread(pos, min(CHUNK + HEADER_SIZE, end - pos))
        last = len(buf) - HEADER_SIZE  # last candidate start within buf
        if last < 0:
            return None
        i = buf.find(_MAGIC, _MAGIC_AT)
        while 0 <= i - _MAGIC_AT <= last:
            rel = i - _MAGIC_AT
            found = _candidate(pread, buf, rel, pos + rel, end, (expected, max_offset), start,
                               allow_gaps)  # fmt: skip
            if found is not None:
                return found
            i = buf.find(_MAGIC, i + 1)
        pos += last + 1
    return None


def _candidate(
    pread: Pread, buf: bytes, rel: int, at: int, end: int, offsets: tuple[int, int],
    start: int, allow_gaps: bool,
) -> tuple[int, BatchHeader] | None:  # fmt: skip
    expected, max_offset = offsets
    header = BatchHeader(*HEADER.unpack_from(buf, rel))
    if header.batch_length < HEADER_SIZE - LOG_OVERHEAD or at + header.size > end:
        return None
    if header.last_offset_delta < 0 or not expected <= header.base_offset:
        return None
    if header.last_offset > max_offset:
        return None
    if not allow_gaps and header.base_offset - expected > at - start:
        return None
    data = buf[rel : rel + header.size] if rel + header.size <= len(buf) else b""
    if not data:
        data = pread(at, header.size)
    try:
        check_batch(data, 0)
    except InvalidRecordBatch:
        return None
    return at, header


def write_segment_from(pread: Pread, start: int, end: int, target: Path) -> None:
    """Write bytes [start, end) as the new segment file `target` (tmp, fsync, rename, fsync)."""
    tmp = target.with_name(target.name + ".tmp")
    _copy(pread, start, end, tmp)
    os.replace(tmp, target)
    fsync_dir(target.parent)


# --- what PartitionLog.open calls ---------------------------------------------------------


def replacement_name(base: int, end: int) -> str:
    """The `.cleaned` file name of a replacement for the segments with base offsets in
    [base, end) (see "Segment replacement" above)."""
    return f"{segment_name(base)}-{segment_name(end)}{CLEANED_SUFFIX}"


def recover_interrupted_swaps(directory: Path, names: list[str] | None = None) -> bool:
    """Finish or roll back every segment replacement a crash interrupted (see "Segment
    replacement" above). `names`: the directory's listing, if the caller has it (one listdir
    per partition at start-up, not two: on a cold cache each costs a disk read). Returns True
    if one was completed (the log was compacted, so its offsets may have gaps)."""
    temps: list[tuple[int, int, str, Path]] = []
    segment_files: list[tuple[int, Path]] = []
    listing = os.listdir(directory) if names is None else names
    if not any(n.endswith((CLEANED_SUFFIX, SWAP_SUFFIX)) for n in listing):
        return False  # the common case: nothing to do
    for path in (directory / name for name in listing):
        match = _REPLACEMENT_FILE.match(path.name)
        if match is not None:
            temps.append((int(match.group(1)), int(match.group(2)), match.group(3), path))
            continue
        seg = SEGMENT_FILE.match(path.name)
        if seg is not None:
            segment_files.append((int(seg.group(1)), path))
    completed = False
    for base, end, kind, path in sorted(temps):
        if kind == "cleaned":
            log.info(
                "log %s: rolling back interrupted compaction of [%d, %d)", directory, base, end
            )
            path.unlink(missing_ok=True)
            continue
        log.info("log %s: completing interrupted compaction of [%d, %d)", directory, base, end)
        completed = True
        for seg_base, seg_path in segment_files:
            if base <= seg_base < end:
                seg_path.unlink(missing_ok=True)
        os.replace(path, directory / (segment_name(base) + LOG_SUFFIX))
    if temps:
        fsync_dir(directory)
    return completed


def read_offset_file(path: Path) -> int | None:
    """The offset a checkpoint file holds; None when it is absent or not a non-negative
    decimal (the caller decides what an unusable one means)."""
    try:
        text = path.read_bytes().decode("ascii", "replace").strip()
    except FileNotFoundError:
        return None
    return int(text) if _DECIMAL.match(text) and not text.startswith("-") else None


def set_aside_cut(
    directory: Path,
    seg: LogSegment,
    start: int,
    end: int,
    next_base: int | None,
    *,
    allow_gaps: bool,
    now_ms: int,
) -> int | None:
    """Recovery is about to cut bytes [start, end) of `seg`: copy them aside, and write the
    intact batches after the damaged one as a new segment. Returns that segment's base
    offset (None if there is none to write) and logs exactly what happened."""
    name = segment_name(seg.base_offset) + LOG_SUFFIX
    lost_from = seg.next_offset  # the offset the valid prefix ends at
    aside = copy_aside(directory, segment_name(seg.base_offset), seg.pread, start, end, now_ms)
    kept = f"copied to {aside}" if aside is not None else "all zero bytes"
    most = seg.base_offset + MAX_RELATIVE_OFFSET
    found = find_resync(seg.pread, start, end, lost_from, most, allow_gaps=allow_gaps)
    if found is not None and next_base is not None and found[1].base_offset >= next_base:
        # The next segment already starts there (salvaged before a crash) or beyond.
        log.error(
            "log %s: %s bytes [%d, %d) failed verification at offset %d (%s); offsets "
            "[%d, %d) are missing; the log continues with segment %d", directory, name,
            start, end, lost_from, kept, lost_from, next_base, next_base,
        )  # fmt: skip
        return None
    if found is not None:
        position, header = found
        new = segment_name(header.base_offset) + LOG_SUFFIX
        write_segment_from(seg.pread, position, end, directory / new)
        log.error(
            "log %s: %s bytes [%d, %d) failed verification at offset %d (%s); the intact "
            "batches from byte %d (offset %d) on are kept as new segment %s, so offsets "
            "[%d, %d) are missing", directory, name, start, end, lost_from, kept, position,
            header.base_offset, new, lost_from, header.base_offset,
        )  # fmt: skip
        return header.base_offset
    if next_base is not None:
        log.error(
            "log %s: %s bytes [%d, %d) failed verification at offset %d (%s); offsets "
            "[%d, %d) are missing; later segments are kept", directory, name, start, end,
            lost_from, kept, lost_from, next_base,
        )  # fmt: skip
    else:
        log.warning(
            "log %s: %s bytes [%d, %d) are a torn or invalid tail (%s); log end offset is "
            "now %d", directory, name, start, end, kept, lost_from,
        )  # fmt: skip
    return None


def set_aside_segment(directory: Path, base: int, now_ms: int) -> Path | None:
    """Move every file of segment `base` into damaged/; returns where its .log went."""
    moved: Path | None = None
    stem = segment_name(base)
    for suffix in (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX):
        path = directory / (stem + suffix)
        if path.exists():
            target = move_aside(path, now_ms)
            moved = target if suffix == LOG_SUFFIX else moved
    return moved


def read_checkpoint(
    directory: Path, name: str, now_ms: int, limit: int | None, why_limit: str
) -> int | None:
    """A checkpoint file's offset; None when it is absent, or implausible (not a decimal
    number, negative, or above `limit`, which None disables): such a file is moved into
    damaged/ with a warning, so that it cannot come back into force once the log grows past
    its value."""
    path = directory / name
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    text = raw.decode("ascii", errors="replace").strip()
    value = int(text) if _DECIMAL.match(text) else None
    if value is None:
        reason = "it is not a decimal offset"
    elif value < 0:
        reason = "it is negative"
    elif limit is not None and value > limit:
        reason = why_limit + f" ({limit})"
    else:
        return value
    moved = move_aside(path, now_ms)
    log.warning("log %s: ignoring %s %r: %s; moved to %s", directory, name, text[:40],
                reason, moved)  # fmt: skip
    return None


def read_recovery_point(
    directory: Path, name: str, now_ms: int, bases: list[int]
) -> tuple[int, int] | None:
    """The recovery point file: `<segment base> <position>`, every byte of the log before that
    position of that segment fsynced (so recovery CRC-checks only what follows), or, as older
    versions wrote it, `<segment base>` alone (position 0). None when absent or implausible: a
    segment past the last one, or a position past its file's end, would exempt bytes never
    known durable from the CRC check; such a file is moved into damaged/ with a warning (as
    read_checkpoint does). A segment no longer there (compacted away) means its position is
    unknown: recovery then starts at the segment before it, the last one known fsynced."""
    path = directory / name
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    text = raw.decode("ascii", errors="replace").strip()
    words = text.split(" ")
    reason = ""
    if not 1 <= len(words) <= 2 or not all(_DECIMAL.match(w) for w in words):
        reason = "it is not a segment base offset and a position"
    else:
        base, position = int(words[0]), int(words[1]) if len(words) == 2 else 0
        if base < 0 or position < 0:
            reason = "it is negative"
        elif base > (bases[-1] if bases else 0):
            reason = "it is past the last segment's base offset, so no segment would be CRC-checked"
        elif base not in bases:
            earlier = [b for b in bases if b < base]
            return (earlier[-1] if earlier else 0), 0
        else:
            try:
                size = (directory / (segment_name(base) + LOG_SUFFIX)).stat().st_size
            except OSError:
                size = -1
            if position > size:
                reason = f"its position is past the end of segment {base} ({size} bytes)"
            else:
                return base, position
    moved = move_aside(path, now_ms)
    log.warning("log %s: ignoring %s %r: %s; moved to %s", directory, name, text[:40],
                reason, moved)  # fmt: skip
    return None


def check_cleaner_offset(directory: Path, name: str, log_end: int | None) -> None:
    """The cleaner's checkpoint is read by cleaner_manager.py, which treats an unusable one as
    "all dirty". Its presence also says the log may have offset gaps, so it stays; an
    implausible value is only reported."""
    try:
        text = (directory / name).read_bytes().decode("ascii", "replace")
    except FileNotFoundError:
        return
    text = text.strip()
    value = int(text) if _DECIMAL.match(text) else -1
    if value < 0 or (log_end is not None and value > log_end):
        log.warning(
            "log %s: ignoring %s %r (not an offset within the log); the next compaction "
            "treats the whole log as dirty", directory, name, text[:40],
        )  # fmt: skip
