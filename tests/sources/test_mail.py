"""Mail parsing: headers in, bodies never out, every input a record or a rejection."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.sources.dataset import Rejection, SourceRecord
from streams.sources.mail import normalised_subject, parse_message, read_mail, subject_hash
from tests.sources.strategies import json_documents

SECRET = "TOKEN-7f3a9c-never-leaves"

MESSAGE = f"""Message-ID: <abc.123@buyer.co.uk>
Date: Tue, 4 Mar 2025 09:15:00 +0100
From: "Doe, Jane" <Jane.Doe+deals@Buyer.co.uk>
To: seller@seller.com, "Ann" <ann@seller.com>
Cc: boss@buyer.co.uk
Subject: RE: Fwd: Renewal {SECRET}
In-Reply-To: <root.1@seller.com>
References: <root.0@seller.com> <root.1@seller.com>
Content-Type: multipart/mixed; boundary=x

--x
The body says {SECRET} and must never leave the parser.
--x--
""".encode()


def test_headers_become_a_raw_email_and_the_body_stays_behind() -> None:
    record = parse_message(MESSAGE, "test.eml")
    assert isinstance(record, SourceRecord)
    p = record.envelope.payload
    assert p["message_id"] == "<abc.123@buyer.co.uk>"
    assert p["from"] == "Jane.Doe+deals@Buyer.co.uk"
    assert p["to"] == ["seller@seller.com", "ann@seller.com"] and p["cc"] == ["boss@buyer.co.uk"]
    assert p["sent_at"] == "2025-03-04T08:15:00.000Z"
    assert p["in_reply_to"] == "<root.1@seller.com>" and p["thread_id"] == "<root.0@seller.com>"
    assert p["has_attachments"] is True and p["size_bytes"] == len(MESSAGE)
    assert p["subject"] is None and p["subject_hash"]  # subject privacy on by default
    assert SECRET.encode() not in record.raw
    kept = parse_message(MESSAGE, "test.eml", keep_subject=True)
    assert isinstance(kept, SourceRecord) and SECRET in kept.envelope.payload["subject"]
    assert b"must never leave" not in kept.raw


@pytest.mark.parametrize(
    ("header", "replacement", "reason"),
    [
        (b"Message-ID: <abc.123@buyer.co.uk>\n", b"", "no Message-ID"),
        (b'From: "Doe, Jane" <Jane.Doe+deals@Buyer.co.uk>\n', b"From: undisclosed\n", "no usable From"),
        (b"Date: Tue, 4 Mar 2025 09:15:00 +0100\n", b"Date: yesterday\n", "unreadable Date"),
        (
            b"Date: Tue, 4 Mar 2025 09:15:00 +0100\n",
            b"Date: Mon, 1 Jan 1979 00:00:00 +0000\n",
            "impossible date",
        ),
        (
            b"Date: Tue, 4 Mar 2025 09:15:00 +0100\n",
            b"Date: Fri, 31 Dec 9999 00:00:00 +0000\n",
            "impossible date",
        ),
    ],
)
def test_unusable_messages_are_rejected_with_a_reason_and_without_body(
    header: bytes, replacement: bytes, reason: str
) -> None:
    broken = MESSAGE.replace(header, replacement)
    result = parse_message(broken, "bad.eml")
    assert isinstance(result, Rejection)
    assert reason in result.reason
    assert b"must never leave" not in result.raw


def test_thread_subjects_normalise() -> None:
    assert normalised_subject("RE: Fwd:  AW: Renewal  Q3") == "renewal q3"
    assert normalised_subject("SV: Re[2]:\tRenewal Q3 ") == "renewal q3"
    assert normalised_subject("Recap: Q3") == "recap: q3"  # a word starting with "re" stays
    assert subject_hash("Re: ") is None


PREFIXES = st.sampled_from(["Re: ", "RE:", "Fwd: ", "FW:", "AW: ", "SV: ", "Sv:", "WG: ", "re[3]: "])


@given(st.text(max_size=60), st.lists(PREFIXES, max_size=3), st.sampled_from(["", " ", "  \t"]))
def test_normalised_subject_ignores_prefixes_spacing_and_case(
    subject: str, prefixes: list[str], padding: str
) -> None:
    once = normalised_subject(subject)
    assert normalised_subject(once) == once  # idempotent
    assert once == once.strip() and "  " not in once
    assert normalised_subject(padding + "".join(prefixes) + subject.upper() + padding) == normalised_subject(
        subject.upper()
    )
    assert normalised_subject("".join(prefixes) + subject) == once


def test_maildir_folders_mbox_and_eml_are_read(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "1.").write_bytes(MESSAGE)
    box = mailbox.mbox(tmp_path / "archive.mbox")
    box.add(MESSAGE.replace(b"abc.123", b"abc.456"))
    box.add(MESSAGE.replace(b"abc.123", b"abc.789"))
    box.flush()
    ids = sorted(r.envelope.event_id for r in read_mail([tmp_path]) if isinstance(r, SourceRecord))
    assert ids == ["<abc.123@buyer.co.uk>", "<abc.456@buyer.co.uk>", "<abc.789@buyer.co.uk>"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_give_a_record_or_a_rejection(data: bytes) -> None:
    assert isinstance(parse_message(data, "fuzz"), SourceRecord | Rejection)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_real_messages_give_a_record_or_a_rejection(real_data: Path, data: st.DataObject) -> None:
    files = sorted((real_data / "enron" / "presto-k" / "inbox").iterdir())
    raw = bytearray(files[data.draw(st.integers(0, len(files) - 1))].read_bytes())
    for _ in range(data.draw(st.integers(1, 20))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    assert isinstance(parse_message(bytes(raw), "mutated"), SourceRecord | Rejection)


GMAIL = {
    "id": "18c1",
    "threadId": "18c0",
    "sizeEstimate": 5120,
    "snippet": "never kept",
    "payload": {
        "headers": [
            {"name": "Message-ID", "value": "<g1@buyer.com>"},
            {"name": "Date", "value": "Tue, 4 Mar 2025 09:15:00 +0000"},
            {"name": "From", "value": "Bob <bob@buyer.com>"},
            {"name": "To", "value": "ann@seller.com"},
            {"name": "Subject", "value": "Pricing"},
            {"name": "List-Unsubscribe", "value": "<mailto:u@buyer.com>"},
        ]
    },
}
GRAPH = {
    "id": "AAMk",
    "internetMessageId": "<m1@seller.com>",
    "conversationId": "conv-1",
    "sentDateTime": "2025-03-05T10:00:00Z",
    "subject": "Re: Pricing",
    "hasAttachments": True,
    "bodyPreview": "never kept",
    "from": {"emailAddress": {"name": "Ann", "address": "ann@seller.com"}},
    "toRecipients": [{"emailAddress": {"address": "bob@buyer.com"}}],
    "ccRecipients": [{"emailAddress": {"address": "cat@buyer.com"}}],
}


def test_gmail_and_graph_json_messages(tmp_path: Path) -> None:
    import orjson

    (tmp_path / "gmail.json").write_bytes(orjson.dumps({"messages": [GMAIL]}))
    (tmp_path / "graph.json").write_bytes(orjson.dumps({"value": [GRAPH, {"odd": 1}]}))
    items = list(read_mail([tmp_path]))
    records = {r.envelope.event_id: r.envelope.payload for r in items if isinstance(r, SourceRecord)}
    rejections = [r for r in items if isinstance(r, Rejection)]
    gmail, graph = records["<g1@buyer.com>"], records["<m1@seller.com>"]
    assert gmail["from"] == "bob@buyer.com" and gmail["list_unsubscribe"] is True
    assert gmail["size_bytes"] == 5120 and gmail["thread_id"] == "18c0"
    assert graph["to"] == ["bob@buyer.com"] and graph["cc"] == ["cat@buyer.com"]
    assert graph["sent_at"] == "2025-03-05T10:00:00.000Z" and graph["has_attachments"] is True
    assert graph["thread_id"] == "conv-1"
    assert len(rejections) == 1 and "neither a Gmail" in rejections[0].reason
    assert all(b"never kept" not in r.raw for r in items)


@settings(max_examples=200, deadline=None)
@given(
    json_documents(
        [
            "payload",
            "headers",
            "name",
            "value",
            "internetMessageId",
            "sentDateTime",
            "from",
            "emailAddress",
            "address",
            "toRecipients",
            "messages",
            "value",
            "x",
        ]
    )
)
def test_arbitrary_json_messages_give_records_or_rejections(document: object) -> None:
    import json

    from streams.sources.mail import parse_json_messages

    results = parse_json_messages(json.dumps(document).encode(), "fuzz.json")
    assert all(isinstance(r, SourceRecord | Rejection) for r in results)


def test_sender_signals_keep_a_name_key_never_the_name() -> None:
    from streams.identity.people import name_key

    record = parse_message(MESSAGE, "test.eml")
    assert isinstance(record, SourceRecord)
    p = record.envelope.payload
    assert p["from_name_key"] == name_key("Jane Doe")
    assert b"Doe, Jane" not in record.raw  # the display name itself is not kept
    assert "list_id" not in p and "envelope_sender" not in p
    enron = (
        b"Message-ID: <1.JavaMail.evans@thyme>\nDate: Mon, 29 Oct 2001 16:17:20 -0800 (PST)\n"
        b"From: m..presto@enron.com\nTo: bob@acme.com\nSender: owner-power@lists.acme.com\n"
        b"List-Id: <power.lists.acme.com>\n"
        b"X-From: Presto, Kevin M. </O=ENRON/OU=NA/CN=RECIPIENTS/CN=KPRESTO>\n\nbody\n"
    )
    e = parse_message(enron, "1.")
    assert isinstance(e, SourceRecord)
    q = e.envelope.payload
    assert q["from_name_key"] == name_key("Kevin Presto") != name_key("Darrin Presto")
    assert q["list_id"] is True and q["envelope_sender"] == "owner-power@lists.acme.com"
