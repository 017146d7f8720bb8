"""Peak memory of reading one huge single-line file of each input type (issue 18, row 15).

    python bench/huge_files.py [--mb 200] [--json]

Each file is written once into a temporary folder, then read by ``read_sources`` in a fresh
process whose peak resident memory (``ru_maxrss``) is printed beside what it read. A file with no
line break is what a corrupted export or an attacker sends: it must be rejected with a reason
at a memory cost that does not grow with the file.

Measured here with 200 MB files (peak RSS of the reading process, 2026-12-01; the interpreter
and imports alone take about 39 MB):

| file | before (commit 8a0bb55) | after | what is read |
|---|---|---|---|
| `.eml` | 2,239 MB | 50 MB | the header block only (at most 1 MiB), the size from the file |
| mbox | 2,445 MB | 41 MB | line by line, headers only, at most 1 MiB of a line |
| `.ics` | 1,439 MB | 39 MB | rejected by size (over 64 MiB: split it) |
| `.csv` | 2,239 MB | 41 MB | row by row, at most 1 MiB of a row |
| Gmail `.json` | 439 MB | 39 MB | rejected by size (over 64 MiB) |
| dataset `email.jsonl` | 445 MB | 42 MB | line by line, at most 1 MB of a line |
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

CHUNK = 1024 * 1024

KINDS = {
    "eml": ("message.eml", b"Message-ID: <huge@x.com>\nSubject: ", b"x"),
    "mbox": ("box.mbox", b"From MAILER-DAEMON Thu Jan  1 00:00:00 2025\nSubject: ", b"x"),
    "ics": ("calendar.ics", b"BEGIN:VCALENDAR\r\nX-WR-CALDESC:", b"x"),
    "csv": ("accounts.csv", b"account,sector\nHuge Co,", b"x"),
    "json": ("export.json", b'[{"id": "1", "payload": {"headers": [{"name": "Subject", "value": "', b"x"),
    "jsonl": ("dataset/email.jsonl", b'{"schema": "raw_email/1", "payload": "', b"x"),
}

READ = """
import resource, sys, orjson
from pathlib import Path
from streams.sources.reader import read_sources
items = list(read_sources([Path(sys.argv[1])]))
reasons = sorted({getattr(i, "reason", "record")[:80] for i in items})
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(orjson.dumps({"items": len(items), "reasons": reasons, "peak_mb": peak}).decode())
"""


def write_huge(path: Path, head: bytes, filler: bytes, megabytes: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(head)
        block = filler * CHUNK
        for _ in range(megabytes):
            handle.write(block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, (name, head, filler) in KINDS.items():
            path = Path(tmp) / kind / name
            write_huge(path, head, filler, args.mb)
            target = path.parent if kind == "jsonl" else path
            done = subprocess.run(
                [sys.executable, "-c", READ, str(target)], capture_output=True, text=True, check=True
            )
            results[kind] = orjson.loads(done.stdout.strip().splitlines()[-1])
            path.unlink()
            if not args.json:
                print(f"{kind:6} {results[kind]['peak_mb']:6,} MB peak  {results[kind]['reasons']}")
    if args.json:
        print(orjson.dumps({"megabytes": args.mb, "results": results}).decode())


if __name__ == "__main__":
    main()
