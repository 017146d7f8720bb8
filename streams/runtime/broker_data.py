"""Forgetting a person in the durable embedded broker's stored topics (``$RAPPORT_HOME/broker-data``).

Tansu's ``s3://`` engine keeps every produced batch as one object,
``<bucket>/clusters/<cluster>/topics/<topic>/partitions/<p>/records/<base offset>.batch.o``, in
Kafka's record batch v2 format (base offset 0 inside; the object's name carries the real one),
and each consumer group's committed offsets as
``groups/consumers/<group>/offsets/<topic>/partitions/<p>.json.o``. It supports neither Kafka's
DeleteRecords (the connection drops) nor compaction, so ``forget`` rewrites those objects: every
record that holds the person becomes an end-offset refresh tombstone (the key every reader of
Rapport passes over, no value), at the same offset and timestamp, so offsets, record counts and
consumer positions stay as they were. Which records go:

* inputs the group reads (``raw``, ``interactions``, ``deadletter``): those before the committed
  offset. The warehouse already holds what they carried, without the person; a record not yet
  consumed is new data and is kept (counted as ``kept_unconsumed``). The ``forget/1`` requests
  themselves go whatever their offset: the purge runs once they are applied;
* changelogs: every record but the newest of its key, which is the table's current value. When
  the key itself is the person (a contact-directory entry) that one goes too, so the directory
  forgets the address; a newest value that still holds the person is kept (``kept_current``: a
  worker replaces it when it next writes the key);
* every other topic (``scores``, ``alerts``): all of them.

A rewritten object is written to a temporary file, fsynced and renamed over the old one with the
old modification time (Tansu takes a partition's end offset from its most recently modified
batch), so a reader sees the old batch or the new one, never a part. Safe while the broker runs:
Tansu reads batch objects afresh on every fetch and never rewrites one.
"""

from __future__ import annotations

import base64
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.util import calc_crc32c

# The key of the tombstone a starting worker writes to each non-empty partition it reads, so a
# restarted Tansu reports that partition's true end (streams.runtime.worker.refresh_end_offsets;
# JSON, as faust serialises table keys). Every reader passes it over; forget reuses it.
END_REFRESH_KEY = b'"__rapport_end_offset_refresh__"'
CHANGELOG_SUFFIX = "-changelog"
BATCH_SUFFIX = ".batch.o"
HEADER = DefaultRecordBatch.HEADER_STRUCT  # >qiibIhiqqqhii
BATCH_CAP = 1 << 31  # the builder refuses records past its size cap: a rebuild keeps them all


@dataclass
class BrokerPurge:
    """What the purge did, for the forget report."""

    replaced: dict[str, int] = field(default_factory=dict)  # topic -> records made tombstones
    batches: int = 0  # objects rewritten
    kept_unconsumed: int = 0  # holding records the group has not read yet
    kept_current: int = 0  # holding records that are their key's current table value

    def as_dict(self) -> dict[str, Any]:
        return {
            "replaced": dict(sorted(self.replaced.items())),
            "batches": self.batches,
            "kept_unconsumed": self.kept_unconsumed,
            "kept_current": self.kept_current,
        }


@dataclass(frozen=True)
class Record:
    offset: int  # absolute
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def records_of(batch: bytes, base: int) -> list[Record]:
    """The records of one stored batch, at absolute offsets (``base``: the object's name)."""
    parsed = DefaultRecordBatch(bytes(batch))
    return [
        Record(base + r.offset, r.timestamp, r.key, r.value, list(r.headers))
        for r in parsed
        if r.offset is not None
    ]


def rebuilt(batch: bytes, base: int, replace: set[int]) -> bytes:
    """``batch`` with the records at absolute offsets ``replace`` as refresh tombstones; every
    other field (offsets, timestamps, producer state, attributes) as it was."""
    parsed = DefaultRecordBatch(bytes(batch))
    fields = list(HEADER.unpack_from(batch, 0))
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=parsed.compression_type,
        is_transactional=parsed.is_transactional,
        producer_id=parsed.producer_id,
        producer_epoch=parsed.producer_epoch,
        base_sequence=parsed.base_sequence,
        batch_size=BATCH_CAP,
    )
    for record in parsed:
        gone = base + record.offset in replace
        builder.append(
            record.offset,
            record.timestamp,
            END_REFRESH_KEY if gone else record.key,
            None if gone else record.value,
            [] if gone else list(record.headers),
        )
    out = builder.build()
    new = list(HEADER.unpack_from(out, 0))
    # base offset, leader epoch, attributes (timestamp type, compression as the builder chose)
    # and the timestamps come from the original; the length and record count from the rebuild
    new[0], new[2] = fields[0], fields[2]
    new[5] = (fields[5] & ~DefaultRecordBatch.CODEC_MASK) | (new[5] & DefaultRecordBatch.CODEC_MASK)
    new[7], new[8] = fields[7], fields[8]
    HEADER.pack_into(out, 0, *new)
    crc = calc_crc32c(memoryview(out)[DefaultRecordBatch.ATTRIBUTES_OFFSET :])
    struct.pack_into(">I", out, DefaultRecordBatch.CRC_OFFSET, crc)
    return bytes(out)


def readable(data: bytes | None) -> Iterator[bytes]:
    """What a stored key or value says: the bytes, a compressed account state unpacked, a dead
    letter's base64 original decoded."""
    if not data:
        return
    yield data
    if data[:1] != b"{":
        try:
            data = zlib.decompress(data)
        except zlib.error:
            return
        yield data
    if b'"original_b64"' in data:
        try:
            document = orjson.loads(data)
            original = document["payload"]["original_b64"]
            yield base64.b64decode(original)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return


def holding(data: bytes | None, domain: bytes, holds: Callable[[Any, str], bool], address: str) -> bool:
    return any(domain in text.lower() and holds(text, address) for text in readable(data))


def forget_request(value: bytes | None) -> bool:
    """A ``forget/1`` control record: applied by the time the purge runs, so it goes too."""
    if not value or b'"forget/1"' not in value:
        return False
    try:
        return bool(orjson.loads(value).get("schema") == "forget/1")
    except (orjson.JSONDecodeError, AttributeError):
        return False


def committed_offsets(bucket: Path, group: str) -> dict[tuple[str, int], int]:
    """The group's committed offset of every partition it has committed, from Tansu's objects."""
    found: dict[tuple[str, int], int] = {}
    for path in bucket.glob(f"clusters/*/groups/consumers/{group}/offsets/*/partitions/*.json.o"):
        try:
            offset = orjson.loads(path.read_bytes())["offset"]
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
            continue
        found[(path.parents[1].name, int(path.name.split(".")[0]))] = int(offset)
    return found


def batches_of(partition: Path) -> list[tuple[int, Path]]:
    """A partition's stored batches, by base offset."""
    return sorted(
        (int(p.name.split(".")[0]), p)
        for p in (partition / "records").glob(f"*{BATCH_SUFFIX}")
        if p.name.split(".")[0].isdigit()
    )


def replace_object(path: Path, body: bytes) -> None:
    """Write ``body`` over ``path`` atomically, keeping its modification time."""
    stat = path.stat()
    tmp = path.with_name(f".tmp-forget-{os.getpid()}-{path.name}")
    with tmp.open("wb") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    os.utime(tmp, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    tmp.replace(path)


def purge_broker(data_dir: Path, group: str, address: str, holds: Callable[[Any, str], bool]) -> BrokerPurge:
    """Make every record of ``data_dir``'s topics that holds ``address`` a tombstone, as the
    module docstring says. ``holds`` decides whether a decoded text holds the address."""
    report = BrokerPurge()
    domain = address.rpartition("@")[2].encode()
    for bucket in sorted(p for p in data_dir.iterdir() if p.is_dir()) if data_dir.is_dir() else []:
        committed = committed_offsets(bucket, group)
        consumed = {topic for topic, _ in committed}
        for topic_dir in sorted(bucket.glob("clusters/*/topics/*")):
            topic = topic_dir.name
            for partition_dir in sorted((topic_dir / "partitions").glob("*")):
                partition = int(partition_dir.name) if partition_dir.name.isdigit() else -1
                bound = committed.get((topic, partition), 0) if topic in consumed else None
                purge_partition(partition_dir, topic, bound, domain, address, holds, report)
    return report


def purge_partition(
    partition_dir: Path,
    topic: str,
    bound: int | None,
    domain: bytes,
    address: str,
    holds: Callable[[Any, str], bool],
    report: BrokerPurge,
) -> None:
    """One partition: ``bound`` is the committed offset of a consumed input (None: not one)."""
    stored = [(base, path, path.read_bytes()) for base, path in batches_of(partition_dir)]
    records = {base: records_of(body, base) for base, _, body in stored}
    changelog = topic.endswith(CHANGELOG_SUFFIX)
    newest: dict[bytes | None, int] = {}
    if changelog:
        for base, _, _ in stored:
            for record in records[base]:
                newest[record.key] = record.offset
    for base, path, body in stored:
        replace: set[int] = set()
        for record in records[base]:
            if record.key == END_REFRESH_KEY and record.value is None:
                continue
            key_holds = holding(record.key, domain, holds, address)
            if not key_holds and not holding(record.value, domain, holds, address):
                continue
            if bound is not None and record.offset >= bound and not forget_request(record.value):
                report.kept_unconsumed += 1
            elif changelog and newest.get(record.key) == record.offset and not key_holds:
                report.kept_current += 1
            else:
                replace.add(record.offset)
        if replace:
            replace_object(path, rebuilt(body, base, replace))
            report.replaced[topic] = report.replaced.get(topic, 0) + len(replace)
            report.batches += 1
