"""CRM CSV exports: the real Maven dataset loads as it is, nothing vanishes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.config import Settings
from streams.identity.resolver import Resolver
from streams.runtime.replay import replay
from streams.sinks.warehouse import connect
from streams.sources.crm import account_id_for, parse_csv
from streams.sources.dataset import Rejection, SourceRecord
from streams.sources.reader import Tally, read_sources


def test_columns_map_to_records() -> None:
    raw = (
        b"opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value\n"
        b"A1,Ann Lee,X,Big Co,Won,2016-10-20,2017-03-01,1054\n"
        b"A2,Ann Lee,X,,Prospecting,,,\n"
    )
    won, orphan = parse_csv(raw, "pipeline.csv")
    assert isinstance(won, SourceRecord) and isinstance(orphan, Rejection)
    p = won.envelope.payload
    assert p["account_id"] == account_id_for("Big Co") == "crm:big-co"
    assert (p["status"], p["amount"], p["owner"]) == ("won", 1054.0, "Ann Lee")
    assert p["created_at"] == "2016-10-20T00:00:00.000Z" and p["close_date"] == "2017-03-01"
    assert orphan.reason == "A2: opportunity has no account"
    assert orphan.origin == "pipeline.csv:3"


def test_unknown_layouts_and_bad_bytes_are_rejected_whole() -> None:
    (rejection,) = parse_csv(b"product,series\nGTX,GT\n", "products.csv")
    assert isinstance(rejection, Rejection) and "unknown CSV layout" in rejection.reason
    (rejection,) = parse_csv(b"\xff\xfe\x00bad", "bad.csv")
    assert isinstance(rejection, Rejection)


ACCOUNTS_HEADER = b"account,sector,year_established,revenue,employees,office_location\n"


def accounts(n: int) -> list[bytes]:
    return [f"Company {i},retail,2001,10.5,100,US\n".encode() for i in range(n)]


def test_a_huge_field_rejects_its_row_with_its_line_number_and_the_rest_is_read(tmp_path: Path) -> None:
    rows = accounts(10)
    rows[3] = b"Huge Co,retail,2001,10.5,100," + b"x" * (200 * 1024) + b"\n"  # over 128 KiB
    rows[6] = b"Longer Co,retail," + b"y" * (2 * 1024 * 1024) + b"\n"  # over the 1 MiB row limit
    file = tmp_path / "accounts.csv"
    file.write_bytes(ACCOUNTS_HEADER + b"".join(rows))
    results = list(read_sources([file]))
    rejections = sorted((r.origin, r.reason) for r in results if isinstance(r, Rejection))
    assert rejections == [
        (f"{file}:5", "unreadable CSV row: field larger than field limit (131072)"),
        (f"{file}:8", "row longer than 1,048,576 bytes"),
    ]
    names = sorted(r.envelope.payload["name"] for r in results if isinstance(r, SourceRecord))
    assert names == sorted(f"Company {i}" for i in range(10) if i not in (3, 6))


def test_an_unclosed_quote_rejects_its_row_and_the_rows_after_it_are_read() -> None:
    rows = accounts(12)
    rows[1] = b'"Quoted, Inc.",retail,2001,10.5,100,"Line one\nline two"\n'  # a legal multi-line row
    rows[2] = b'"Broken Co,retail,2001,10.5,100,US\n'  # the quote is never closed
    results = list(parse_csv(ACCOUNTS_HEADER + b"".join(rows), "accounts.csv"))
    (rejection,) = [r for r in results if isinstance(r, Rejection)]
    assert rejection.origin == "accounts.csv:5" and "unclosed quote" in rejection.reason
    names = [r.envelope.payload["name"] for r in results if isinstance(r, SourceRecord)]
    assert names == ["Company 0", "Quoted, Inc."] + [f"Company {i}" for i in range(3, 12)]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    assert all(isinstance(r, SourceRecord | Rejection) for r in parse_csv(data, "fuzz.csv"))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=',\n"ab1-', max_size=400))
def test_mutated_pipeline_rows_never_raise(body: str) -> None:
    raw = "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value\n" + body
    assert all(isinstance(r, SourceRecord | Rejection) for r in parse_csv(raw.encode(), "fuzz.csv"))


def test_maven_dataset_loads_and_nothing_vanishes(real_data: Path, tmp_path: Path) -> None:
    folder = real_data / "maven-crm"
    tally = Tally()
    resolver = Resolver(["example.com"])
    for item in read_sources([folder]):
        tally.note(item, resolver)
    summary = tally.as_dict()
    assert summary["accepted"] + summary["rejected"] == summary["read"]
    assert summary["rejection_reasons"]["opportunity has no account"] == 1425

    settings_ = Settings.from_env({"RAPPORT_HOME": str(tmp_path), "RAPPORT_SELLER_DOMAINS": "example.com"})
    client = connect(settings_.warehouse_url)
    try:
        replay(read_sources([folder]), settings_, client=client)

        def count(sql: str) -> Any:
            return client.query(sql).result_rows[0][0]

        assert count("SELECT count() FROM rapport.accounts FINAL") == 85
        assert count("SELECT count() FROM rapport.sellers FINAL") == 35
        stored = count("SELECT count() FROM rapport.opportunities FINAL")
        held = count("SELECT count() FROM rapport.rejected_events FINAL WHERE reason LIKE '%has no account'")
        assert stored + held == 8800 and held == 1425
        assert count("SELECT countIf(status = 'won') FROM rapport.opportunities FINAL") > 0
    finally:
        client.close()


def test_a_rejected_row_keeps_no_free_text_column() -> None:
    """A rejected row is kept for diagnosis with only the columns Rapport reads; a notes column
    (or anything else an export adds) is private text and is removed."""
    csv = (
        b"opportunity_id,account,deal_stage,close_value,notes\n"
        b'A1,Acme,Won,lots,"PRIVATE NOTE: the buyer\'s divorce"\n'
        b"A2,Acme,Won,99,fine\n"
    )
    results = list(parse_csv(csv, "opps.csv"))
    (rejection,) = [r for r in results if isinstance(r, Rejection)]
    assert b"PRIVATE" not in rejection.raw and rejection.raw.startswith(b"A1,Acme,Won,lots,")
    assert len([r for r in results if isinstance(r, SourceRecord)]) == 1
