"""Replay's input cut into steps: read, decoded, resolved, copies dropped, in steps of ``BATCH``.

:func:`replay_parts` turns the items into parts (chunks of records and dead letters, step ends,
the end of input) and :func:`replay_steps` turns parts into the loop's steps, whose records are
applied as their chunks arrive. The parts come from this process (items given) or from a reader
process (:func:`read_ahead`, a reader given: what ``rapport replay`` and ``bench/replay.py``
do), so reading, decoding and resolving overlap scoring. They were a third of replay's main
thread (py-spy, demo dataset, 2026-12-05); with them in the reader, replay of the demo dataset
went from 2,561-2,621 to 3,164-3,320 events/s (alternating runs, same hour, 2 cores).

The reader process is started with ``spawn`` (the parent holds chDB's threads, which a fork
would copy half-alive); each part is one msgpack message on a pipe, whose OS buffer bounds how
far the reader runs ahead.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import pickle
from collections import Counter
from collections.abc import Callable, Collection, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import msgspec

from streams.config import TOPIC_RAW
from streams.contracts import ContractError, Envelope
from streams.deadletters import dead_letter
from streams.identity.fingerprint import Copies
from streams.identity.resolver import Resolver
from streams.runtime.collector import relax_collector
from streams.runtime.loop import Step
from streams.sources.dataset import Rejection, SourceRecord

BATCH = 20_000  # records and letters per step
CHUNK = 1_000  # per part: what scoring may start on while the rest is resolved

Items = Iterable[SourceRecord | Rejection]
# A picklable callable giving the items, e.g. ``functools.partial(read_sources, paths)``: the
# reader process opens the input itself (an open file or a generator cannot cross processes).
Reader = Callable[[], Items]


@dataclass
class ReplaySummary:
    read: int = 0
    rejected: int = 0
    duplicates: int = 0
    copies: int = 0  # copies under a new Message-ID (content fingerprint), dropped before scoring
    rows: Counter[str] = field(default_factory=Counter)


class ReaderError(RuntimeError):
    """The reader process failed with an error that could not be brought back as itself."""


def replay_parts(
    items: Items,
    resolver: Resolver,
    summary: ReplaySummary,
    as_of: float | None = None,
    batch: int = BATCH,
    chunk_size: int = CHUNK,
) -> Generator[Part, None, None]:
    """The items resolved, in chunks of about ``chunk_size``, a step end once a step holds
    ``batch`` records and letters (an item's records stay in one chunk), then
    the end of input: pending events settle and the days and value windows the input's
    watermark (or ``as_of``) passed close, as a drained live worker's idle tick closes them."""
    records: list[tuple[str, Envelope]] = []
    letters: list[Envelope] = []
    in_step = 0
    digest = hashlib.sha256()
    copies = Copies()  # the same mechanism as ``rapport ingest``'s Tally and the live resolve agent

    def chunk() -> Chunk:
        part = Chunk(list(records), list(letters))
        records.clear()
        letters.clear()
        return part

    for item in items:
        summary.read += 1
        digest.update(item.raw)
        if isinstance(item, Rejection):
            letters.append(item.letter())
            summary.rejected += 1
        else:
            try:
                resolved = resolver.resolve(item.envelope)
            except ContractError as exc:  # a dead letter, not remembered as an original
                letters.append(dead_letter(TOPIC_RAW, "resolve", str(exc), item.raw))
                summary.rejected += 1
            else:
                if copies.original_of(item.envelope):
                    summary.copies += 1
                else:
                    records.extend((r.account_id, r.envelope) for r in resolved)
        if len(records) + len(letters) >= chunk_size or in_step + len(records) + len(letters) >= batch:
            in_step += len(records) + len(letters)
            yield chunk()
            if in_step >= batch:
                # The token must differ per write: an insert with a token seen before is dropped.
                yield StepEnd(f"replay:batch:{digest.hexdigest()}")
                in_step = 0
    if records or letters:
        yield chunk()
        in_step += 1
    if in_step:
        yield StepEnd(f"replay:batch:{digest.hexdigest()}")
    yield InputEnd(f"replay:flush:{digest.hexdigest()}", as_of)


def replay_steps(parts: Iterator[Part], progress: Callable[[int], None] | None = None) -> Iterator[Step]:
    """Steps of the parts; each step's records are applied as they arrive (:class:`Arriving`)."""
    for part in parts:
        if isinstance(part, InputEnd):
            yield Step(eof=True, now=part.now, origin=part.origin)
            for extra in parts:  # runs the parts to their end (the reader's summary comes last)
                raise ReaderError(f"the replay input sent {type(extra).__name__} after its end")
            return
        step = Step()
        step.records = Arriving(step, part, parts, progress)
        yield step
        for _ in step.records:  # drained, should the loop not have iterated every record
            pass


class Arriving(Collection[tuple[str, Envelope]]):
    """A step's records as its chunks arrive: the first iteration reads them from ``parts`` (the
    reader may still be resolving the last while the loop applies the first) and fills in the
    step's letters, origin and progress callback by the time it ends, which is before the loop
    commits the step. Later iterations go over what arrived."""

    def __init__(
        self, step: Step, first: Part, parts: Iterator[Part], progress: Callable[[int], None] | None
    ) -> None:
        self.step, self.first, self.parts, self.progress = step, first, parts, progress
        self.arrived: list[tuple[str, Envelope]] = []
        self.complete = False

    def __iter__(self) -> Iterator[tuple[str, Envelope]]:
        if self.complete:
            yield from self.arrived
            return
        self.complete = True  # one reader of the parts
        part = self.first
        while not isinstance(part, StepEnd):
            if not isinstance(part, Chunk):
                raise ReaderError(f"the replay input sent {type(part).__name__} inside a step")
            self.step.letters.extend(part.letters)
            self.arrived.extend(part.records)
            yield from part.records
            part = next(self.parts)
        self.step.origin = part.origin
        count = len(self.arrived) + len(self.step.letters)
        if self.progress is not None and count:
            progress = self.progress
            self.step.done = lambda _: progress(count)

    def __len__(self) -> int:
        return len(self.arrived)

    def __contains__(self, record: object) -> bool:
        return record in self.arrived


# --- the reader process -------------------------------------------------------------------------


class Chunk(msgspec.Struct, tag="chunk", array_like=True):
    records: list[tuple[str, Envelope]]
    letters: list[Envelope]


class StepEnd(msgspec.Struct, tag="step_end", array_like=True):
    origin: str


class InputEnd(msgspec.Struct, tag="input_end", array_like=True):
    origin: str
    now: float | None


class Finished(msgspec.Struct, tag="finished", array_like=True):
    read: int
    rejected: int
    copies: int


class Failed(msgspec.Struct, tag="failed", array_like=True):
    error: str  # the exception's type and text, shown if it cannot be unpickled
    pickled: bytes


Part = Chunk | StepEnd | InputEnd


def read_ahead(
    reader: Reader, seller_domains: tuple[str, ...], summary: ReplaySummary, as_of: float | None = None
) -> Generator[Part, None, None]:
    """:func:`replay_parts` of ``reader()``, computed in a reader process while this one scores.

    An error in the reader is raised here as itself (a bad source file names itself as it would
    in one process); the reader exiting without a word raises :class:`ReaderError`. Closing this
    generator early (an error while scoring, Ctrl-C) stops the reader."""
    context = multiprocessing.get_context("spawn")
    receiving, sending = context.Pipe(duplex=False)
    process = context.Process(
        target=_reader_main,
        args=(reader, seller_domains, as_of, sending),
        name="rapport-replay-reader",
        daemon=True,
    )
    process.start()
    sending.close()  # the child's end: a dead child is then EOF here, not a hang
    decoder = msgspec.msgpack.Decoder(Chunk | StepEnd | InputEnd | Finished | Failed)
    try:
        while True:
            try:
                message = decoder.decode(receiving.recv_bytes())
            except EOFError:
                process.join(5)
                raise ReaderError(
                    f"the replay reader process exited (code {process.exitcode}) before the end of "
                    "the input; nothing of the unread part was written. Run the replay again."
                ) from None
            if isinstance(message, Finished):
                summary.read, summary.rejected = message.read, message.rejected
                summary.copies = message.copies
                return
            if isinstance(message, Failed):
                raise _error_of(message)
            yield message
    finally:
        receiving.close()
        if process.is_alive():
            process.terminate()
        process.join()


def _error_of(failed: Failed) -> BaseException:
    try:
        error = pickle.loads(failed.pickled)
    except Exception:
        return ReaderError(f"reading the input failed: {failed.error}")
    return error if isinstance(error, BaseException) else ReaderError(failed.error)


def _reader_main(
    reader: Reader, seller_domains: tuple[str, ...], as_of: float | None, sending: Connection
) -> None:
    relax_collector()
    encoder = msgspec.msgpack.Encoder()
    summary = ReplaySummary()
    message: Any
    try:
        for part in replay_parts(reader(), Resolver(seller_domains), summary, as_of):
            sending.send_bytes(encoder.encode(part))
        message = Finished(summary.read, summary.rejected, summary.copies)
    except Exception as exc:
        try:
            pickled = pickle.dumps(exc)
        except Exception:
            pickled = b""
        message = Failed(f"{type(exc).__name__}: {exc}", pickled)
    try:
        sending.send_bytes(encoder.encode(message))
    except OSError:  # the parent stopped reading (closed the generator)
        pass
    finally:
        sending.close()
