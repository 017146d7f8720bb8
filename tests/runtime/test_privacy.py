"""Privacy: a token planted in message bodies, subjects and meeting descriptions of real-format
inputs (.eml, mbox, .ics written here) appears in no topic, no warehouse table and no log after
a live run with subject privacy on (the default). Also: no credentials in code or messages.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.config import Settings, redacted
from streams.identity.resolver import Resolver
from streams.runtime.app import END_REFRESH_KEY
from streams.runtime.stack import Stack
from streams.runtime.stored_state import unpack
from streams.sinks.warehouse import WarehouseError, connect
from streams.sources.dataset import Rejection
from streams.sources.reader import Tally, read_sources
from tests.runtime.live_vs_replay import produce
from tests.runtime.topics import read_all

TOKEN = f"tok{uuid.uuid4().hex}"
REPO = Path(__file__).parents[2]


def email(n: int, sender: str, to: str, when: datetime, reply_to: str = "") -> str:
    return (
        f"Message-ID: <privacy-{n}@demo-seller.com>\n"
        f"From: {sender}\nTo: {to}\nSubject: Re: pricing {TOKEN}\n"
        f"Date: {when.strftime('%a, %d %b %Y %H:%M:%S +0000')}\n"
        + (f"In-Reply-To: {reply_to}\n" if reply_to else "")
        + f"Content-Type: text/plain\n\nThe numbers are {TOKEN}; keep them private.\n"
    )


def write_inputs(folder: Path) -> list[Path]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    mail = folder / "mail"
    mail.mkdir(parents=True)
    (mail / "1.eml").write_text(email(1, "ann@demo-seller.com", "bob@buyer-privacy.com", start))
    (mail / "2.eml").write_text(
        email(
            2,
            "bob@buyer-privacy.com",
            "ann@demo-seller.com",
            start + timedelta(days=1, hours=2),  # a day later: a relationship, not a one-off
            "<privacy-1@demo-seller.com>",
        )
    )
    mbox = folder / "box.mbox"
    mbox.write_text(
        "".join(
            "From MAILER-DAEMON Thu Jan  1 00:00:00 2025\n"
            + email(n, "ann@demo-seller.com", "cy@buyer-privacy.com", start + timedelta(hours=n))
            + "\n"
            for n in (3, 4)
        )
    )
    ics = folder / "meeting.ics"
    day = (start + timedelta(days=1)).strftime("%Y%m%dT%H%M%SZ")
    ics.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//privacy//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:privacy-meeting-1\r\nDTSTAMP:{day}\r\nDTSTART:{day}\r\nDURATION:PT30M\r\n"
        f"SUMMARY:Review {TOKEN}\r\nDESCRIPTION:Agenda: {TOKEN} and more\r\nLOCATION:Room {TOKEN}\r\n"
        "ORGANIZER:mailto:ann@demo-seller.com\r\n"
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@buyer-privacy.com\r\n"
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:cy@buyer-privacy.com\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    return [mail, mbox, ics, *write_rejected_inputs(folder / "rejected", start)]


def write_rejected_inputs(folder: Path, start: datetime) -> list[Path]:
    """Inputs that are rejected, each with the token where the attacks of issue 18 (row 2) found
    private text kept in ``rejected_events``."""
    folder.mkdir(parents=True)
    date = start.strftime("%a, %d %b %Y %H:%M:%S +0000")
    # LF headers, CRLF CRLF before the body, no Message-ID
    (folder / "mixed-endings.eml").write_bytes(
        f"From: bob@buyer-privacy.com\nTo: ann@demo-seller.com\nDate: {date}\nSubject: {TOKEN}\r\n\r\n"
        f"To: {TOKEN}@buyer-privacy.com\nbody {TOKEN}\n".encode()
    )
    # no blank line at all: the body follows the headers directly
    (folder / "no-blank-line.eml").write_text(
        f"Message-ID: <privacy-nb@buyer-privacy.com>\nFrom: bob@buyer-privacy.com\nDate: never\n"
        f"Hello Ann, the number is {TOKEN}.\nRegards: {TOKEN}\n"
    )
    # attachment names and descriptions on a message with an unreadable date
    (folder / "attachment.eml").write_text(
        f"Message-ID: <privacy-att@buyer-privacy.com>\nFrom: bob@buyer-privacy.com\nDate: soon\n"
        f'Content-Type: application/pdf; name="{TOKEN}.pdf"\nContent-Description: {TOKEN}\n'
        f'Content-Disposition: attachment; filename="{TOKEN}.pdf"\n\nbody\n'
    )
    # an mbox body line starting with "From " splits the body into a message of its own
    (folder / "inner-from.mbox").write_text(
        "From MAILER-DAEMON Thu Jan  1 00:00:00 2025\n"
        + email(90, "bob@buyer-privacy.com", "ann@demo-seller.com", start).replace(f"Date: {date}\n", "")
        + f"From the desk of Bob: {TOKEN}\nNote: {TOKEN}\n"
    )
    # a calendar icalendar cannot read, with a calendar description and the token in its first bytes
    (folder / "broken.ics").write_text(
        f"{TOKEN} first line\r\nBEGIN:VCALENDAR\r\nX-WR-CALNAME:{TOKEN}\r\nX-WR-CALDESC:{TOKEN}\r\n"
        f"BEGIN:VEVENT\r\nUID:privacy-broken\r\nSUMMARY:{TOKEN}\r\nEND:VEVENT\r\n"
    )
    return sorted(folder.iterdir())


@pytest.fixture(scope="module")
def live_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("privacy")
    paths = write_inputs(folder / "inputs")
    settings = Settings.from_env(
        {
            "RAPPORT_HOME": str(folder / "home"),
            "RAPPORT_SELLER_DOMAINS": "demo-seller.com",
            "RAPPORT_BROKER_STORAGE": "memory",  # as the suite (tests/conftest.py)
        }
    )
    items = list(read_sources(paths))  # subject privacy on: the default
    tally = Tally()
    for item in items:
        tally.note(item, Resolver(settings.seller_domains))
    with Stack(settings) as stack:
        stack.start_workers()
        sent = produce(stack.bootstrap, items, Resolver(settings.seller_domains))
        stack.wait_drained(sent, timeout_s=180)
        topics = read_all(stack.bootstrap)
    client = connect(settings.warehouse_url)
    try:
        tables = [
            t
            for (t,) in client.query("SELECT name FROM system.tables WHERE database = 'rapport'").result_rows
        ]
        found, rows = {}, {}
        for table in tables:
            columns = [row[0] for row in client.query(f"DESCRIBE TABLE rapport.{table}").result_rows]
            condition = " OR ".join(f"position(toString(`{c}`), '{TOKEN}') > 0" for c in columns)
            found[table] = client.query(f"SELECT count() FROM rapport.{table} WHERE {condition}").result_rows[
                0
            ][0]
            rows[table] = client.query(f"SELECT count() FROM rapport.{table}").result_rows[0][0]
    finally:
        client.close()
    logs = {p.name: p.read_bytes() for p in settings.home.glob("*.log")}
    return {
        "paths": paths,
        "items": items,
        "sent": sent,
        "topics": topics,
        "found": found,
        "rows": rows,
        "logs": logs,
        "summary": orjson.dumps(tally.as_dict()),  # what `rapport ingest --json` prints
    }


def test_the_inputs_carry_the_token_and_went_through(live_run: dict[str, Any]) -> None:
    assert all(TOKEN in p.read_text() for p in live_run["paths"][1:])
    rejections = [i for i in live_run["items"] if isinstance(i, Rejection)]
    assert live_run["sent"] == len(live_run["items"]) - len(rejections) == 5  # four emails, one meeting
    assert live_run["rows"]["interactions"] == 5 and live_run["rows"]["account_health"] > 0
    # every rejected input is a dead letter in the warehouse (ids are stable per original bytes)
    origins = {Path(r.origin.split("#")[0]).name for r in rejections}
    assert origins == {p.name for p in live_run["paths"][3:]}
    assert live_run["rows"]["rejected_events"] == len({r.raw for r in rejections}) >= 4


def test_rejections_keep_no_private_text_in_their_reasons(live_run: dict[str, Any]) -> None:
    rejections = [i for i in live_run["items"] if isinstance(i, Rejection)]
    assert rejections and not [r for r in rejections if TOKEN in r.reason or TOKEN.encode() in r.raw]
    assert b"rejected" in live_run["summary"] and TOKEN.encode() not in live_run["summary"]
    # a starting worker's end-offset refresh tombstone is no input (streams.runtime.worker)
    raw = [value for key, value in live_run["topics"]["raw"] if key != END_REFRESH_KEY]
    assert len(raw) == 5 and sum(b'"subject_hash":"' in v for v in raw if v) == 4  # subjects kept as hashes


def readable(topic: str, value: bytes | None) -> bytes:
    """A message's value as text to search: the account states' changelog holds compressed JSON."""
    if value and topic.endswith("account-state-changelog"):
        return orjson.dumps(unpack(value))
    return value or b""


def test_the_token_is_on_no_topic(live_run: dict[str, Any]) -> None:
    topics = live_run["topics"]
    assert {"raw", "interactions", "scores", "deadletter"} <= topics.keys()
    # the state table's topic too, searched in what it decompresses to (where the buyers appear)
    states = [
        readable(topic, value)
        for topic, messages in topics.items()
        if topic.endswith("account-state-changelog")
        for _, value in messages
    ]
    assert any(b"buyer-privacy.com" in state for state in states)
    leaks = {
        topic: n
        for topic, messages in topics.items()
        if (n := sum(TOKEN.encode() in (key or b"") + readable(topic, value) for key, value in messages))
    }
    assert leaks == {}


def test_the_token_is_in_no_table_and_no_log(live_run: dict[str, Any]) -> None:
    assert {"interactions", "rejected_events", "account_health"} <= live_run["found"].keys()
    assert {table: n for table, n in live_run["found"].items() if n} == {}
    assert live_run["logs"] and not [
        name for name, text in live_run["logs"].items() if TOKEN.encode() in text
    ]


def test_no_credentials_in_code_or_configuration() -> None:
    # A credential is a literal value: quoted in code, quoted or bare in YAML. Environment
    # references (${VAR}) and the names of variables ("GRAFANA_CLICKHOUSE_PASSWORD") are not.
    key = r"(password|passwd|secret|token)\w*\s*[:=]\s*"
    value = r"(?!\$\{)(?!(?-i:[A-Z][A-Z0-9_]*\b))[A-Za-z0-9!@#%^&*]{4,}"
    quoted = re.compile(key + r"['\"]" + value, re.I)
    bare = re.compile(key + r"['\"]?" + value, re.I)
    assert quoted.search('CLICKHOUSE_PASSWORD = "hunter22"')  # the patterns do find one
    assert bare.search("password: hunter22") and not bare.search("password: ${GRAFANA_PASSWORD}")
    assert not quoted.search('PASSWORD_ENV = "GRAFANA_CLICKHOUSE_PASSWORD"')
    files = [*REPO.glob("streams/**/*.py"), REPO / "docker-compose.yml", *REPO.glob("dashboards/**/*")]
    hits = [
        f"{path.relative_to(REPO)}: {match.group(0)}"
        for path in files
        if path.is_file()
        for match in (quoted if path.suffix == ".py" else bare).finditer(path.read_text(errors="replace"))
    ]
    assert hits == []


def test_warehouse_passwords_never_reach_messages() -> None:
    url = "http://rapport:s3cret-pw@127.0.0.1:9"
    assert redacted(url) == "http://rapport:***@127.0.0.1:9"
    with pytest.raises(WarehouseError) as failure:
        connect(url)
    assert "s3cret-pw" not in str(failure.value) and "***" in str(failure.value)
