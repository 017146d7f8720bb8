"""The relationship ledger: an organisation is a relationship when CRM-listed or both sides wrote."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.contracts import make
from streams.identity.people import name_key
from streams.identity.relationship import (
    AFFILIATE,
    AUTOMATED,
    NO_REPLY,
    ONE_DAY,
    ONE_WAY_INBOUND,
    ONE_WAY_OUTBOUND,
    Ledger,
    Relationship,
)
from streams.identity.resolver import ResolveError, Resolver

SELLER = "enron.com"


def email(n: int, sender: str, to: list[str], day: int = 1, **extra: object):  # type: ignore[no-untyped-def]
    at = f"2001-10-{day:02d}T10:00:00.000Z"
    payload = {"message_id": f"<{n}@x>", "from": sender, "to": to, "sent_at": at, **extra}
    return make("raw_email/1", f"<{n}@x>", "test", at, payload)


def ledger_of(*messages, crm: list | None = None) -> Ledger:  # type: ignore[no-untyped-def]
    resolver = Resolver([SELLER])
    ledger = Ledger(resolver.seller_domains)
    for message in [*(crm or []), *messages]:
        try:
            for record in resolver.resolve(message):
                ledger.observe(record.envelope)
        except ResolveError as exc:
            ledger.reject(str(exc))
    ledger.finish()
    return ledger


def test_both_directions_make_a_relationship_with_its_evidence() -> None:
    ledger = ledger_of(
        email(1, "ann@enron.com", ["bob@acme.com", "cat@acme.com"], day=3),
        email(2, "bob@acme.com", ["ann@enron.com", "joe@enron.com"], day=5, in_reply_to="<1@x>"),
        email(3, "Joe@Enron.com", ["bob@acme.com"], day=9, from_name_key=name_key("Joe Bloggs")),
    )
    acme = ledger.relationships["acme.com"]
    assert acme.is_relationship() and acme.reason() is None
    assert (acme.inbound, acme.outbound) == (1, 2)
    assert acme.buyer_people == {"bob@acme.com", "cat@acme.com"}
    assert acme.seller_people == {"ann@enron.com", "joe@enron.com"}
    assert len(ledger.seller_persons(acme)) == 2
    assert (
        acme.first_exchange == "2001-10-03T10:00:00.000Z" and acme.last_exchange == "2001-10-09T10:00:00.000Z"
    )


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        ([email(1, "bob@acme.com", ["ann@enron.com"])], ONE_WAY_INBOUND),
        (
            [email(1, "ann@enron.com", ["bob@acme.com"]), email(2, "ann@enron.com", ["cat@acme.com"])],
            ONE_WAY_OUTBOUND,
        ),
        (
            [email(1, "newsletter@acme.com", ["ann@enron.com"]), email(2, "ann@enron.com", ["x@y.org"])],
            AUTOMATED,
        ),
    ],
)
def test_one_way_and_automated_traffic_is_no_relationship(messages, reason) -> None:  # type: ignore[no-untyped-def]
    acme = ledger_of(*messages).relationships["acme.com"]
    assert not acme.is_relationship() and acme.reason() == reason


def test_a_two_way_exchange_within_one_day_is_a_one_off() -> None:
    """One thread on one day (presto-k: a fan-site newsletter and its reply, a vendor's pitch and
    its answer) is no relationship; the same exchange a day apart is."""
    one_day = ledger_of(
        email(1, "bob@acme.com", ["ann@enron.com"], day=3),
        email(2, "ann@enron.com", ["bob@acme.com"], day=3, in_reply_to="<1@x>"),
    ).relationships["acme.com"]
    assert not one_day.is_relationship() and one_day.reason() == ONE_DAY
    two_days = ledger_of(
        email(1, "bob@acme.com", ["ann@enron.com"], day=3),
        email(2, "ann@enron.com", ["bob@acme.com"], day=4, in_reply_to="<1@x>"),
    ).relationships["acme.com"]
    assert two_days.is_relationship()


def test_mail_both_ways_is_a_relationship_only_once_one_side_answers() -> None:
    """presto-k's miami.edu: an "Invoices" mail out, two unrelated notices in, months apart
    (hand-labelled wrong). A reply ties the sides: by In-Reply-To / References, or by subject
    alone when the cc list changed (the resolver's fallback thread includes the people)."""
    unrelated = ledger_of(
        email(1, "ann@enron.com", ["bob@acme.com"], day=3, subject_hash="invoices"),
        email(2, "bob@acme.com", ["ann@enron.com"], day=12, subject_hash="game time"),
        email(3, "cat@acme.com", ["ann@enron.com"], day=20, subject_hash="tickets"),
    ).relationships["acme.com"]
    assert not unrelated.is_relationship() and unrelated.reason() == NO_REPLY
    by_subject = ledger_of(
        email(1, "ann@enron.com", ["bob@acme.com"], day=3, subject_hash="pricing"),
        email(2, "bob@acme.com", ["ann@enron.com", "joe@enron.com"], day=12, subject_hash="pricing"),
    ).relationships["acme.com"]
    assert by_subject.is_relationship()
    by_reference = ledger_of(
        email(1, "ann@enron.com", ["bob@acme.com"], day=3),
        email(2, "bob@acme.com", ["ann@enron.com"], day=12, references=["<1@x>"]),
    ).relationships["acme.com"]
    assert by_reference.is_relationship()


def test_a_crm_listed_account_is_a_relationship_before_any_reply() -> None:
    crm = make(
        "crm_account/1",
        "account:crm:acme:0",
        "test",
        "2001-09-01T00:00:00.000Z",
        {
            "account_id": "crm:acme",
            "name": "Acme",
            "domains": ["acme.com"],
            "owner": "ann@enron.com",
            "updated_at": "2001-09-01T00:00:00.000Z",
        },
    )
    ledger = ledger_of(email(1, "ann@enron.com", ["bob@acme.com"]), crm=[crm])
    assert ledger.relationships["crm:acme"].is_relationship()


def test_messages_that_are_no_interaction_are_counted_by_reason() -> None:
    ledger = ledger_of(
        email(1, "broker@acme.com", ["desk@globex.com"]),  # no seller participant (a bcc'd report)
        email(2, "friend@gmail.com", ["ann@enron.com"]),  # free-mail sender
        email(3, "ann@enron.com", ["joe@enron.com"]),  # internal
    )
    summary = ledger.summary()
    assert summary["not_interactions_by_reason"] == {
        "no seller participant": 1,
        "free-mail/ISP or role sender": 1,
        "seller-side only (internal mail)": 1,
    }
    assert summary["organisations"] == 0


def test_an_affiliate_is_suggested_as_a_seller_domain_and_is_no_relationship() -> None:
    key = name_key("Suarez, John")
    ledger = ledger_of(
        email(1, "john.suarez@enron.com", ["bob@acme.com"], from_name_key=key),
        email(2, "john_suarez@enron.net", ["ann@enron.com"], from_name_key=name_key("John Suarez")),
        email(3, "ann@enron.com", ["john_suarez@enron.net"]),
    )
    (suggestion,) = ledger.summary()["suggested_seller_domains"]
    assert suggestion["domain"] == "enron.net" and suggestion["people"] == ["john_suarez@enron.net"]
    assert "--seller-domain enron.net" in suggestion["add_with"]
    assert ledger.relationships["enron.net"].reason() == AFFILIATE


relationships = st.builds(
    Relationship,
    organisation=st.text(min_size=1, max_size=20),
    crm_listed=st.booleans(),
    inbound=st.integers(0, 10**6),
    outbound=st.integers(0, 10**6),
    automated=st.integers(0, 10**6),
    buyer_people=st.sets(st.emails(), max_size=4),
    seller_people=st.sets(st.text(max_size=10), max_size=4),
    senders=st.sets(st.emails(), max_size=6),
    first_exchange=st.none() | st.just("2001-10-01T10:00:00.000Z"),
    last_exchange=st.none() | st.just("2001-10-09T10:00:00.000Z"),
    affiliate=st.booleans(),
    conversed=st.booleans(),
    topics=st.dictionaries(st.text(max_size=12), st.integers(1, 3), max_size=4),
)


@given(relationships)
def test_to_dict_from_dict_round_trips_and_the_rule_holds(r: Relationship) -> None:
    again = Relationship.from_dict(r.to_dict())
    assert again == r
    days_apart = r.first_exchange is not None and r.last_exchange is not None  # the two are 8 days apart
    two_way = r.inbound > 0 and r.outbound > 0 and days_apart and r.conversed
    assert r.is_relationship() == (r.crm_listed or (two_way and not r.affiliate))
    assert (r.reason() is None) == r.is_relationship()
