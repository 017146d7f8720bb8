"""How cost grows with the number of accounts: live and replay rates, memory, warehouse size.

    python bench/scale.py [--sizes 100,1000,10000] [--live-seconds 60] [--replay-seconds 30]
                          [--warmup-days 7] [--json] [--no-record]

Each size is a dataset of the generator bench/pipeline.py uses (``generate(accounts, seed=7)``):
the same accounts' behaviour at every size, about 420 events per account and year. What is
measured per size, in this order:

1. **generate** — only the first days of the year the windows below need (at most all 365):
   the whole year of 10,000 accounts is 4,176,072 events, 333 s and 4.8 GB of peak RSS to
   generate (measured; 1,000 accounts: 416,371 events, 32 s, 0.5 GB), and would take about an
   hour to drain live. A shorter dataset is the same year cut short (the generator drops what
   falls after its end), so a prefix of days is a prefix of the events in time order. Seconds and
   this process's peak RSS (``VmHWM``) so far are printed.
2. **live** — a Rapport worker (:class:`streams.runtime.stack.Stack`, durable embedded broker,
   as in bench/pipeline.py) drains ``raw`` from the start; at most ``warm-up + --live-seconds ×
   3,000`` events are produced first (twice the live rate measured here). The first
   ``--warmup-days`` of event time are the warm-up: every account's CRM import (its account and
   contacts, all at its start) and first week, which at 10,000 accounts would otherwise be
   the whole window, where at 100 accounts they are 3 % of the year. The rate is
   :func:`pipeline.measure_live`'s, taken from the first status write past the warm-up over
   ``--live-seconds`` (or to the last event produced, whichever comes first), in raw events.
   The events come in time order, interleaved over the accounts, so the window holds the events
   of (nearly) all accounts: ``live_window_accounts`` counts the accounts with an event among
   the about ``rate × window`` events after the warm-up (the worker consumes its partitions side by
   side, so the window is in time order only per partition). The worker's peak RSS is the
   ``VmHWM`` of the process that writes the status file (its pid is in it), read at the end of
   the window: it holds the scoring states, RocksDB and chDB in one process.
3. **replay** — in its own process (one process may open one chDB folder; its ``VmHWM`` is its
   own), :func:`streams.runtime.replay.replay` reads the same prefix written as a dataset folder
   (read as a stream, not held in memory) into a fresh chDB folder, from the start. The rate
   counts the events read after the warm-up, over the time from reading the first of them to
   replay's return (which settles what is pending and waits for the last insert); input stops
   after ``--replay-seconds``. ``replay_window_accounts`` as for live.
4. **warehouse** — after that replay, the bytes on disk of the active parts of database
   ``rapport`` (``system.parts``; merges not forced) divided by accounts × the years the replayed
   events span (first to last event time). At 10,000 accounts that span is a few weeks, so the
   per-account CRM import weighs more than in a year.

Prints a table; with ``--json`` the last line is one JSON object. Each run is written to
``bench/results/scale-<UTC time>.json`` with the machine and the git commit. The machine is
shared: read the figures with the load averages recorded.
"""

from __future__ import annotations

import argparse
import bisect
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from pipeline import SEED, measure_live, records
from record import machine, record

from streams.config import TOPIC_DEADLETTER, Settings
from streams.contracts import ContractError, Envelope, format_time
from streams.identity.resolver import Resolver
from streams.runtime.collector import relax_collector
from streams.runtime.producer import EventProducer
from streams.runtime.replay import replay
from streams.runtime.stack import Stack
from streams.runtime.status import read_status
from streams.sinks.warehouse import connect
from streams.sources.dataset import Rejection, SourceRecord, read_dataset, write_dataset
from streams.sources.synthetic import SELLER_DOMAIN, generate

BENCH = Path(__file__).resolve().parent
LIVE_CEILING = 3_000  # events/s the live window is given input for
REPLAY_CEILING = 6_000  # and the replay window
EVENTS_PER_ACCOUNT_DAY = 1.1  # the generator's, after the CRM import (416,371 / 1,000 / 365 = 1.14)


def peak_rss_mb(pid: int | str = "self") -> float:
    """The process's peak resident set (``VmHWM``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmHWM for process {pid}")


def settings_of(home: Path) -> Settings:
    return Settings.from_env({"RAPPORT_HOME": str(home), "RAPPORT_SELLER_DOMAINS": SELLER_DOMAIN})


def days_needed(accounts: int, warmup_days: int, events: int) -> int:
    """Days of data for the warm-up and then ``events`` more, at most a year."""
    return min(365, warmup_days + math.ceil(events / (accounts * EVENTS_PER_ACCOUNT_DAY)) + 1)


def accounts_in(events: list[Envelope], start: int, stop: int) -> int:
    """Accounts with an event among ``events[start:stop]`` (resolved in order from the first, as
    the worker resolves them: CRM records name the contacts)."""
    resolver = Resolver((SELLER_DOMAIN,))
    seen: set[str] = set()
    for index, envelope in enumerate(events[:stop]):
        try:
            resolved = resolver.resolve(envelope)
        except ContractError:
            continue
        if index >= start:
            seen.update(r.account_id for r in resolved)
    return len(seen)


# --- live --------------------------------------------------------------------------------------


def run_live(items: list[SourceRecord], warm: int, seconds: float, home: Path) -> dict[str, Any]:
    """The live rate past the warm-up over ``seconds``, and the worker's peak RSS."""
    settings = settings_of(home)
    with Stack(settings) as stack:
        with EventProducer(stack.bootstrap, Resolver(settings.seller_domains)) as producer:
            producer.send_all(items)
            producer.flush()
        valid = sum(n for topic, n in producer.sent.items() if topic != TOPIC_DEADLETTER)
        stack.start_workers()
        rate = measure_live([stack], valid, timeout_s=1800.0, after=warm, window_s=seconds)
        status = read_status(stack.settings.status_file) or {}
        rss = peak_rss_mb(int(status["pid"]))
    return {"live_events_per_s": round(rate), "live_produced": valid, "worker_peak_rss_mb": rss}


# --- replay ------------------------------------------------------------------------------------


def replay_worker(folder: Path, home: Path, warm: int, seconds: float) -> None:
    """Replay ``folder`` into a fresh warehouse; prints the window's figures as one JSON line."""
    relax_collector()  # as every `rapport` command does
    settings = settings_of(home)
    marks: dict[str, Any] = {"started": 0.0, "first": None, "last": None}

    def bounded(items: Iterable[SourceRecord | Rejection]) -> Iterator[SourceRecord | Rejection]:
        for index, item in enumerate(items):
            if index == warm:
                marks["started"] = time.perf_counter()
            elif index > warm and time.perf_counter() - marks["started"] >= seconds:
                return
            if isinstance(item, SourceRecord):
                marks["first"] = marks["first"] or item.envelope.occurred_at
                marks["last"] = item.envelope.occurred_at
            yield item

    client = connect(settings.warehouse_url)
    summary = replay(bounded(read_dataset(folder)), settings, client=client)
    elapsed = time.perf_counter() - marks["started"]
    if not marks["started"]:
        raise SystemExit(f"the dataset ended within the warm-up ({summary.read:,} events)")
    stored = client.query(
        "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = 'rapport' AND active"
    ).result_rows[0][0]
    span = datetime.fromisoformat(marks["last"]) - datetime.fromisoformat(marks["first"])
    print(
        orjson.dumps(
            {
                "read": summary.read,
                "window_events": summary.read - warm,
                "window_s": round(elapsed, 1),
                "peak_rss_mb": peak_rss_mb(),
                "warehouse_bytes": int(stored),
                "span_days": round(span / timedelta(days=1), 2),
            }
        ).decode()
    )


def run_replay(events: list[Envelope], labels: dict[str, Any], warm: int, seconds: float, home: Path) -> Any:
    folder = home / "data"
    write_dataset(folder, events, labels)
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--replay-worker",
            str(folder),
            str(home / "replay"),
            f"{warm}",
            f"{seconds}",
        ],
        capture_output=True,
        check=True,
        text=True,
    )
    return orjson.loads(done.stdout.strip().splitlines()[-1])


# --- the run -----------------------------------------------------------------------------------


def run(accounts: int, args: argparse.Namespace, home: Path) -> dict[str, Any]:
    """All figures of one size."""
    wanted = max(args.live_seconds * LIVE_CEILING, args.replay_seconds * REPLAY_CEILING)
    days = days_needed(accounts, args.warmup_days, int(wanted))
    started = time.perf_counter()
    events, labels = generate(accounts, seed=SEED, days=days)
    figures: dict[str, Any] = {
        "accounts": accounts,
        "days": days,
        "events": len(events),
        "generate_s": round(time.perf_counter() - started, 1),
        "generate_peak_rss_mb": peak_rss_mb(),
    }
    cut = format_time(datetime.fromisoformat(labels["start"]) + timedelta(days=args.warmup_days))
    warm = bisect.bisect_left([e.occurred_at for e in events], cut)  # events are in time order
    figures["warmup_events"] = warm

    items = records(events[: warm + int(args.live_seconds * LIVE_CEILING)])
    figures.update(run_live(items, warm, args.live_seconds, home / "live"))
    del items
    live_window = min(figures["live_produced"] - warm, int(figures["live_events_per_s"] * args.live_seconds))
    figures["live_window_events"] = live_window
    figures["live_window_accounts"] = accounts_in(events, warm, warm + live_window)

    replayed = run_replay(events, labels, warm, args.replay_seconds, home)
    figures["replay_events_per_s"] = round(replayed["window_events"] / replayed["window_s"])
    figures["replay_window_events"] = replayed["window_events"]
    figures["replay_window_s"] = replayed["window_s"]
    figures["replay_window_accounts"] = accounts_in(events, warm, replayed["read"])
    figures["replay_peak_rss_mb"] = replayed["peak_rss_mb"]
    figures["warehouse_bytes"] = replayed["warehouse_bytes"]
    figures["warehouse_span_days"] = replayed["span_days"]
    years = replayed["span_days"] / 365.25
    figures["warehouse_bytes_per_account_year"] = round(replayed["warehouse_bytes"] / (accounts * years))
    return figures


COLUMNS = (
    ("accounts", "accounts"),
    ("events", "events"),
    ("live ev/s", "live_events_per_s"),
    ("replay ev/s", "replay_events_per_s"),
    ("worker MB", "worker_peak_rss_mb"),
    ("replay MB", "replay_peak_rss_mb"),
    ("B/account-year", "warehouse_bytes_per_account_year"),
    ("days", "days"),
    ("live window acc.", "live_window_accounts"),
    ("replay window acc.", "replay_window_accounts"),
)


def table(runs: list[dict[str, Any]]) -> str:
    widths = [max(len(title), *(len(f"{r[key]:,}") for r in runs)) for title, key in COLUMNS]
    lines = ["  ".join(title.rjust(w) for (title, _), w in zip(COLUMNS, widths, strict=True))]
    for r in runs:
        lines.append("  ".join(f"{r[key]:,}".rjust(w) for (_, key), w in zip(COLUMNS, widths, strict=True)))
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--replay-worker":
        folder, home, warm, seconds = sys.argv[2:]
        replay_worker(Path(folder), Path(home), int(warm), float(seconds))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100,1000,10000", help="accounts per run, comma-separated")
    parser.add_argument("--live-seconds", type=float, default=60.0, help="the live window past the warm-up")
    parser.add_argument(
        "--replay-seconds", type=float, default=30.0, help="the replay window past the warm-up"
    )
    parser.add_argument("--warmup-days", type=int, default=7, help="event-time days before both windows")
    parser.add_argument("--json", action="store_true", help="last line: the figures as one JSON object")
    parser.add_argument("--no-record", action="store_true", help="do not write bench/results/")
    args = parser.parse_args()

    at = datetime.now(UTC)
    before = machine()
    runs = []
    for accounts in (int(size) for size in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="rapport-scale-") as tmp:
            runs.append(run(accounts, args, Path(tmp)))
        print(f"{accounts:,} accounts: {orjson.dumps(runs[-1]).decode()}", flush=True)
    figures = {"runs": runs}
    print(table(runs))
    print(f"machine: {before}")
    if not args.no_record:
        path = record("scale", at, vars(args), figures, before)
        print(f"recorded: {path.relative_to(BENCH.parent)}")
    if args.json:
        print(orjson.dumps(figures).decode())


if __name__ == "__main__":
    main()
