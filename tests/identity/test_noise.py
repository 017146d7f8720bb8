"""Each noise signal on its own: list headers, list and bulk senders, free-mail/ISP, rotating senders."""

from __future__ import annotations

import pytest

from streams.contracts import make
from streams.identity.domains import organisation_domain
from streams.identity.freemail import ADDITIONS, free_mail_reason
from streams.identity.noise import automated_reason, bulk_sender_reason
from streams.identity.relationship import ROTATING, Ledger
from streams.identity.resolver import Resolver
from streams.sources.dataset import SourceRecord
from streams.sources.mail import parse_message

T = "2001-10-02T10:00:00.000Z"
PERSON = "bob.smith@acme.com"


def parsed(*headers: str) -> dict:
    raw = "\n".join(
        ["Message-ID: <n@x>", "Date: Tue, 2 Oct 2001 10:00:00 -0000", *headers, "", "body text"]
    ).encode()
    record = parse_message(raw, "test")
    assert isinstance(record, SourceRecord), record
    return record.envelope.payload


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("List-Id: <energy.lists.example.org>", "list mail (List-Id)"),
        ("List-Post: <mailto:energy@lists.example.org>", "list mail (List-Id)"),
        ("List-Unsubscribe: <mailto:leave@acme.com>", "list mail (List-Unsubscribe)"),
        ("Precedence: bulk", "bulk mail (Precedence: bulk)"),
        ("Precedence: list", "bulk mail (Precedence: list)"),
        ("Auto-Submitted: auto-replied", "automated (Auto-Submitted)"),
    ],
)
def test_header_signals(header: str, reason: str) -> None:
    payload = parsed(f"From: {PERSON}", "To: ann@enron.com", header)
    assert automated_reason(payload, PERSON) == reason
    assert automated_reason(parsed(f"From: {PERSON}", "To: ann@enron.com"), PERSON) is None


def test_auto_submitted_no_is_a_person() -> None:
    assert automated_reason(parsed(f"From: {PERSON}", "Auto-Submitted: no"), PERSON) is None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("owner-energy-l@lists.example.org", "list sender (owner-/-request address)"),
        ("energy-l-request@example.org", "list sender (owner-/-request address)"),
        ("bounce-123@acme.com", "bounce sender"),
        ("news@bounces.acme.com", "bounce sender"),
        ("portfoliomailer@smtp.quote.com", "bulk sender address"),
        ("strat_alert@hotmail.com", "bulk sender address"),
        ("hotwebcash@lists.adversend.com", "bulk sender subdomain"),
        ("405954.61860093.2@1.americanexpress.com", "generated sender address"),
        ("insynconline.6gfwm6w8.d@insync-palm.com", "generated sender address"),
        (PERSON, None),
        ("jking100@aol.com", None),
        ("dsalter1@charter.net", None),
    ],
)
def test_sender_signals(address: str, reason: str | None) -> None:
    assert bulk_sender_reason(address) == reason


def test_a_list_managers_sender_header_marks_the_mail() -> None:
    payload = parsed(f"From: {PERSON}", "Sender: owner-energy@lists.example.org", "To: ann@enron.com")
    assert payload["envelope_sender"] == "owner-energy@lists.example.org"
    envelope = make("raw_email/1", "<n@x>", "test", T, payload)
    assert Resolver(["enron.com"]).automated_reason(envelope) == "list sender (owner-/-request address)"


@pytest.mark.parametrize(
    "domain", ["gmail.com", "hotmail.com", "swbell.net", "mindspring.com", "mediaone.net", "houston.rr.com"]
)
def test_free_mail_and_isp_domains_are_no_organisation(domain: str) -> None:
    assert organisation_domain(domain) == ""
    assert free_mail_reason(domain, domain.split(".", 1)[-1] if domain.count(".") > 1 else domain)


def test_additions_each_say_why_and_corporate_domains_stay() -> None:
    assert all(len(reason) > 10 for reason in ADDITIONS.values())
    assert "mediaone.net" in ADDITIONS and "(" in (free_mail_reason("mediaone.net", "mediaone.net") or "")
    for corporate in ("ubsw.com", "hgp-inc.com", "tva.gov", "duke-energy.com", "enron.com"):
        assert organisation_domain(corporate) == corporate


def test_many_rotating_one_way_senders_of_one_domain_are_automated() -> None:
    resolver = Resolver(["enron.com"])
    ledger = Ledger(resolver.seller_domains)
    for n in range(6):
        sender = f"offers-{'abcdef'[n]}@promo-shop.com"
        payload = {"message_id": f"<{n}@x>", "from": sender, "to": ["ann@enron.com"], "sent_at": T}
        for record in resolver.resolve(make("raw_email/1", f"<{n}@x>", "test", T, payload)):
            ledger.observe(record.envelope)
    (shop,) = ledger.finish()
    assert not shop.is_relationship() and shop.reason() == ROTATING
