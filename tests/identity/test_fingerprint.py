"""Copies of one message are found by content fingerprint, whatever their Message-ID."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from streams.contracts import format_time, make
from streams.identity.fingerprint import Copies, content_fingerprint
from streams.sources.mail import subject_hash

names = st.text(alphabet="abcdefghij", min_size=1, max_size=6)
addresses = st.builds(
    lambda local, d: f"{local}@{d}.com", names, st.sampled_from(["seller", "acme", "globex"])
)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
).map(lambda t: t.replace(second=0, microsecond=0))


def payload(sender: str, to: list[str], cc: list[str], at: datetime, subject: str, mid: str) -> dict:
    return {
        "message_id": mid,
        "from": sender,
        "to": to,
        "cc": cc,
        "sent_at": format_time(at),
        "subject_hash": subject_hash(subject),
    }


@given(
    sender=addresses,
    recipients=st.lists(addresses, min_size=1, max_size=5, unique=True),
    at=moments,
    seconds=st.integers(0, 59),
    subject=st.text(alphabet="abc xyz", max_size=20).filter(lambda t: t.strip()),
    data=st.data(),
)
def test_a_folder_copy_has_the_same_fingerprint(sender, recipients, at, seconds, subject, data) -> None:
    """Recipient order, the To/Cc split, case, seconds and reply prefixes do not matter."""
    original = payload(sender, recipients, [], at, subject, "<a@x>")
    shuffled = data.draw(st.permutations(recipients))
    cut = data.draw(st.integers(0, len(shuffled)))
    copy = payload(
        sender.upper(),
        [r.upper() for r in shuffled[:cut]],
        shuffled[cut:],
        at + timedelta(seconds=seconds),
        "RE:  " + subject.upper(),
        "<b@y>",
    )
    assert content_fingerprint(copy) == content_fingerprint(original)


@given(
    sender=addresses,
    other=addresses,
    recipients=st.lists(addresses, min_size=1, max_size=4, unique=True),
    at=moments,
    subject=st.text(alphabet="abcxyz", min_size=1, max_size=10),
    change=st.sampled_from(["sender", "recipient", "minute", "subject"]),
)
def test_another_message_has_another_fingerprint(sender, other, recipients, at, subject, change) -> None:
    original = payload(sender, recipients, [], at, subject, "<a@x>")
    changed = dict(original)
    if change == "sender":
        changed["from"] = "z" + sender
    elif change == "recipient":
        changed["to"] = [*recipients, "z" + other]
    elif change == "minute":
        changed["sent_at"] = format_time(at + timedelta(minutes=1))
    else:
        changed["subject_hash"] = subject_hash(subject + " other")
    assert content_fingerprint(changed) != content_fingerprint(original)


def test_without_a_subject_the_second_counts() -> None:
    at = datetime(2026, 1, 21, 14, 19, 21, tzinfo=UTC)
    first = payload("ann@seller.com", ["bob@acme.com"], [], at, "", "<1@x>")
    assert content_fingerprint(first) == content_fingerprint(dict(first, message_id="<copy@x>"))
    later = payload("ann@seller.com", ["bob@acme.com"], [], at + timedelta(seconds=14), "", "<2@x>")
    assert content_fingerprint(later) != content_fingerprint(first)


def test_copies_counts_repeated_ids_and_renumbered_copies_and_never_reads_a_body() -> None:
    at = datetime(2001, 10, 1, 9, 30, 12, tzinfo=UTC)
    first = payload("ann@seller.com", ["bob@acme.com"], [], at, "Pricing", "<1@x>")
    assert "body" not in first  # a payload has no body to read; the fingerprint uses headers only
    copy = dict(first, message_id="<2@x>")
    other = dict(first, message_id="<3@x>", subject_hash=subject_hash("Other"))
    copies = Copies()
    envelopes = [make("raw_email/1", p["message_id"], "t", p["sent_at"], p) for p in (first, copy, other)]
    assert copies.original_of(envelopes[0]) is None
    assert copies.original_of(envelopes[1]) == ("fingerprint", "<1@x>")
    assert copies.original_of(envelopes[2]) is None
    assert copies.original_of(envelopes[0]) == ("message_id", "<1@x>")
    assert copies.original_of(envelopes[1]) == ("message_id", "<1@x>")
