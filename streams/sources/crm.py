"""CRM exports in: CSV files of accounts, sellers and opportunities → ``crm_*/1`` records.

Column mapping (case-insensitive header names; the first one present wins):

| record | field | columns |
|---|---|---|
| account | name (required) | account, account_name, name |
| account | domains | domains, domain, website (`;`-separated) |
| account | industry | industry, sector |
| account | owner | owner, account_owner |
| seller | name (required) | sales_agent, seller, owner_name, name |
| seller | manager, team | manager; regional_office, team, region |
| opportunity | id (required) | opportunity_id, id |
| opportunity | account (required) | account, account_name |
| opportunity | stage | deal_stage, stage |
| opportunity | owner | sales_agent, owner |
| opportunity | amount | close_value, amount |
| opportunity | dates | engage_date, created_at, created; close_date |

Which file is which comes from its header: an opportunity id column makes an opportunities file,
a seller column without an account column a sellers file, an account column an accounts file.
Account ids are ``crm:`` plus the account name in lower case with spaces as dashes. Snapshot
CSVs carry no change time, so their records are versioned at the epoch; an opportunity uses its
close date, else its engage date. Rows that cannot be used (an opportunity without an account,
say) are rejected with the reason and the row, never dropped.
"""

from __future__ import annotations

import csv
import io
import re
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

from streams.contracts import MAX_AMOUNT, ContractError, bounded, format_time, make, parse_time
from streams.sources.dataset import Rejection, SourceRecord, bounded_lines, reason_of

CHANGE_SUFFIXES = (".json", ".jsonl", ".ndjson")  # read by streams.sources.crm_changes

SOURCE = "crm-csv"
EPOCH = "1970-01-01T00:00:00.000Z"
STATUS = {"won": "won", "closed won": "won", "lost": "lost", "closed lost": "lost"}


def account_id_for(name: str) -> str:
    return "crm:" + re.sub(r"\s+", "-", name.strip().lower())


def _pick(row: dict[str, str], *names: str) -> str:
    for name in names:
        value = row.get(name)
        if value is not None and value.strip():
            return value.strip()
    return ""


def _date(value: str) -> str | None:
    if not value:
        return None
    try:
        return format_time(parse_time(value if "T" in value else f"{value}T00:00:00+00:00"))
    except ValueError:
        raise ContractError("unreadable date") from None


def kind_of(header: list[str]) -> str:
    columns = set(header)
    if columns & {"opportunity_id", "id"} and columns & {"deal_stage", "stage"}:
        return "opportunity"
    if columns & {"sales_agent", "seller"} and not columns & {"account", "account_name"}:
        return "seller"
    if columns & {"account", "account_name", "name"}:
        return "account"
    raise ContractError(f"unknown CSV layout (columns: {', '.join(header)}); see streams/sources/crm.py")


def _account(row: dict[str, str]) -> SourceRecord:
    name = _pick(row, "account", "account_name", "name")
    if not name:
        raise ContractError("account row without a name")
    domains = [d.strip().lower() for d in _pick(row, "domains", "domain", "website").split(";") if d.strip()]
    payload = {
        "account_id": account_id_for(name),
        "name": name,
        "domains": domains,
        "owner": _pick(row, "owner", "account_owner") or None,
        "industry": _pick(row, "industry", "sector") or None,
        "updated_at": EPOCH,
    }
    envelope = make("crm_account/1", f"account:{payload['account_id']}:csv", SOURCE, EPOCH, payload)
    return SourceRecord("crm", envelope, envelope.to_bytes())


def _seller(row: dict[str, str]) -> SourceRecord:
    name = _pick(row, "sales_agent", "seller", "owner_name", "name")
    if not name:
        raise ContractError("seller row without a name")
    payload = {
        "seller_id": re.sub(r"\s+", "-", name.lower()),
        "name": name,
        "email": _pick(row, "email") or None,
        "manager": _pick(row, "manager") or None,
        "team": _pick(row, "regional_office", "team", "region") or None,
        "updated_at": EPOCH,
    }
    envelope = make("crm_seller/1", f"seller:{payload['seller_id']}:csv", SOURCE, EPOCH, payload)
    return SourceRecord("crm", envelope, envelope.to_bytes())


def _opportunity(row: dict[str, str]) -> SourceRecord:
    opportunity_id = _pick(row, "opportunity_id", "id")
    if not opportunity_id:
        raise ContractError("opportunity row without an id")
    account = _pick(row, "account", "account_name")
    if not account:
        raise ContractError(f"{opportunity_id}: opportunity has no account")
    stage = _pick(row, "deal_stage", "stage") or "unknown"
    created = _date(_pick(row, "engage_date", "created_at", "created"))
    closed = _date(_pick(row, "close_date"))
    amount = _pick(row, "close_value", "amount")
    updated = closed or created or EPOCH
    payload = {
        "opportunity_id": opportunity_id,
        "account_id": account_id_for(account),
        "stage": stage,
        "status": STATUS.get(stage.lower(), "open"),
        "amount": bounded(amount, "close_value", 0, MAX_AMOUNT) if amount else None,
        "owner": _pick(row, "sales_agent", "owner") or None,
        "created_at": created or updated,
        "close_date": closed[:10] if closed else None,
        "next_step": None,
        "updated_at": updated,
    }
    envelope = make("crm_opportunity/1", f"opportunity:{opportunity_id}:{updated}", SOURCE, updated, payload)
    return SourceRecord("crm", envelope, envelope.to_bytes())


BUILDERS = {"account": _account, "seller": _seller, "opportunity": _opportunity}
# The columns each builder reads (their values become CRM records anyway). A rejected row keeps
# only these for diagnosis; every other column (notes, descriptions, anything a CRM export adds)
# is private free text and is kept as "[removed]".
READ_COLUMNS = {
    "account": frozenset(
        {"account", "account_name", "name", "domains", "domain", "website", "owner", "account_owner"}
        | {"industry", "sector"}
    ),
    "seller": frozenset(
        {"sales_agent", "seller", "owner_name", "name", "email", "manager", "regional_office", "team"}
        | {"region"}
    ),
    "opportunity": frozenset(
        {"opportunity_id", "id", "account", "account_name", "deal_stage", "stage", "engage_date"}
        | {"created_at", "created", "close_date", "close_value", "amount", "sales_agent", "owner"}
    ),
}
REMOVED = "[removed]"


def kept_of_row(kind: str, header: list[str], values: list[str]) -> bytes:
    """What a rejected row keeps: its values in column order, those of unread columns removed."""
    read = READ_COLUMNS[kind]
    return ",".join(
        value if n < len(header) and header[n] in read else REMOVED for n, value in enumerate(values)
    ).encode()


MAX_FIELD = csv.field_size_limit()  # 131,072 characters, the csv module's own limit
MAX_ROW = 1024 * 1024  # bytes of one row, quoted line breaks included


def _csv_rows(lines: Iterable[bytes | None]) -> Iterator[tuple[int, list[str] | None, str]]:
    """``(line number, values, "")`` for each record, or ``(line number, None, reason)`` for one
    that cannot be read. A quoted field may span lines (RFC 4180), but a quote still open at the
    end of the file or after :data:`MAX_ROW` bytes rejects only its first line, and reading
    resumes on the next one: an unclosed quote no longer swallows the rows after it."""
    numbered = enumerate(lines, start=1)
    buffer: deque[tuple[int, bytes | None]] = deque()

    def more() -> bool:
        item = next(numbered, None)
        if item is not None:
            buffer.append(item)
        return item is not None

    while buffer or more():
        number, text = buffer[0]
        if text is None:
            buffer.popleft()
            yield number, None, f"row longer than {MAX_ROW:,} bytes"
            continue
        taken = 1
        while text.count(b'"') % 2 and len(text) <= MAX_ROW and (taken < len(buffer) or more()):
            following = buffer[taken][1]
            if following is None:
                break
            text += following
            taken += 1
        if text.count(b'"') % 2:
            buffer.popleft()
            yield number, None, "unclosed quote (the row is skipped, reading goes on with the next line)"
            continue
        for _ in range(taken):
            buffer.popleft()
        try:
            records = list(csv.reader(io.StringIO(text.decode("utf-8-sig" if number == 1 else "utf-8"))))
        except UnicodeDecodeError:
            yield number, None, "row is not UTF-8 text"
        except csv.Error as exc:  # its messages quote no input ("field larger than field limit")
            yield number, None, f"unreadable CSV row: {exc}"
        else:
            for values in records:
                yield number, values, ""


def parse_csv(raw: bytes, origin: str) -> Iterator[SourceRecord | Rejection]:
    """Every row of one CSV export as a record or a rejection; never raises."""
    return parse_csv_lines(bounded_lines(io.BytesIO(raw), MAX_ROW), origin)


def parse_csv_lines(lines: Iterable[bytes | None], origin: str) -> Iterator[SourceRecord | Rejection]:
    """Every row of the lines of one CSV export, each a record or a rejection naming its line."""
    rows = _csv_rows(lines)
    first = next(rows, None)
    if first is None:
        yield Rejection(origin, "unreadable CSV: empty file", b"")
        return
    _number, header_values, reason = first
    try:
        if header_values is None:
            raise ContractError(reason)
        header = [h.strip().lower() for h in header_values]
        kind = kind_of(header)
    except ContractError as exc:
        yield Rejection(origin, f"unreadable CSV: {exc}", b",".join(h.encode() for h in header_values or []))
        return
    build = BUILDERS[kind]
    for line, values, reason in rows:
        if values is None:
            yield Rejection(f"{origin}:{line}", reason, b"")
            continue
        if not any(v.strip() for v in values):
            continue
        row = dict(zip(header, values, strict=False))
        try:
            yield build(row)
        except (ContractError, ValueError) as exc:
            yield Rejection(
                f"{origin}:{line}", reason_of(exc, "unreadable row"), kept_of_row(kind, header, values)
            )


def read_crm(path: Path) -> Iterator[SourceRecord | Rejection]:
    """The CSV files of a folder, or one file (any name but a JSON change feed's)."""
    if path.is_dir():
        files = sorted(path.glob("*.csv"))
    else:
        files = [] if path.suffix.lower() in CHANGE_SUFFIXES else [path]
    for file in files:
        with file.open("rb") as handle:
            yield from parse_csv_lines(bounded_lines(handle, MAX_ROW), str(file))
