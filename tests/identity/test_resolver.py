from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.contracts import ContractError, make
from streams.identity.resolver import ResolveError, Resolver, normalise_address, registered_domain

T = "2026-03-02T10:00:00.000Z"
SELLER = "seller.com"


def email(sender: str, to: list[str], **extra: object) -> object:
    payload = {"message_id": f"<{sender}-{len(to)}@x>", "from": sender, "to": to, "sent_at": T, **extra}
    return make("raw_email/1", payload["message_id"], "test", T, payload)


def test_outbound_email_lands_on_the_buyer_domain() -> None:
    (out,) = Resolver([SELLER]).resolve(email("Ann@Seller.com", ["bob@buyer.co", "cat@sub.buyer.co"]))
    p = out.envelope.payload
    assert out.account_id == "buyer.co"
    assert p["direction"] == "outbound"
    assert p["sellers"] == ["ann@seller.com"]
    assert p["buyers"] == ["bob@buyer.co", "cat@sub.buyer.co"]
    assert p["match_method"] == "domain" and 0 < p["match_confidence"] < 1
    assert out.envelope.event_id == "<Ann@Seller.com-2@x>"  # the source's id, not the interaction's


def test_inbound_reply_and_threading() -> None:
    (out,) = Resolver([SELLER]).resolve(
        email("bob@buyer.co", ["ann@seller.com"], in_reply_to="<m1@x>", references=["<m0@x>", "<m1@x>"])
    )
    p = out.envelope.payload
    assert p["direction"] == "inbound"
    assert p["thread_id"] == "<m0@x>"
    assert p["in_reply_to"] == "<m1@x>"


def test_mail_without_reply_headers_threads_by_subject_and_participants() -> None:
    from streams.sources.mail import subject_hash

    resolver = Resolver([SELLER])

    def thread(sender: str, to: list[str], subject: str, **extra: object) -> str:
        (out,) = resolver.resolve(email(sender, to, subject_hash=subject_hash(subject), **extra))
        return str(out.envelope.payload["thread_id"])

    root = thread("ann@seller.com", ["bob@buyer.co"], "Pricing  Q3")
    assert root.startswith("subject:")
    assert thread("Bob@Buyer.co", ["ann@seller.com"], "RE: pricing q3") == root  # the reply joins
    assert thread("ann@seller.com", ["bob@buyer.co", "cat@buyer.co"], "Re: Pricing Q3") != root
    assert thread("ann@seller.com", ["bob@buyer.co"], "Pricing Q4") != root
    # reply headers win over the subject; a message without a subject is its own thread
    assert thread("bob@buyer.co", ["ann@seller.com"], "Re: Pricing Q3", in_reply_to="<p@x>") == "<p@x>"
    (out,) = resolver.resolve(email("ann@seller.com", ["dan@buyer.co"]))
    assert out.envelope.payload["thread_id"] == out.envelope.payload["interaction_id"].removeprefix("email:")


@pytest.mark.parametrize(
    "extra",
    [{"list_unsubscribe": True}, {"precedence": "bulk"}, {"auto_submitted": "auto-generated"}],
)
def test_automated_mail_is_flagged(extra: dict[str, object]) -> None:
    (out,) = Resolver([SELLER]).resolve(email("news@buyer.co", ["ann@seller.com"], **extra))
    assert out.envelope.payload["automated"] is True


def test_noreply_sender_is_automated() -> None:
    (out,) = Resolver([SELLER]).resolve(email("noreply@buyer.co", ["ann@seller.com"]))
    assert out.envelope.payload["automated"] is True


def test_seller_only_mail_has_no_account() -> None:
    with pytest.raises(ResolveError, match="only seller-side"):
        Resolver([SELLER]).resolve(email("ann@seller.com", ["joe@seller.com"]))


def test_without_seller_domains_the_error_says_how_to_fix() -> None:
    with pytest.raises(ContractError, match="RAPPORT_SELLER_DOMAINS"):
        Resolver([]).resolve(email("ann@seller.com", ["joe@seller.com"]))


def test_normalisation_handles_case_plus_and_enron_dots() -> None:
    assert normalise_address("M..Presto+deals@Enron.COM") == "m.presto@enron.com"
    assert normalise_address("<ann@x.com>") == "ann@x.com"


def test_registered_domain_takes_last_two_labels() -> None:
    assert registered_domain("mail.eu.buyer.com") == "buyer.com"


@given(st.emails())
def test_normalise_is_idempotent(address: str) -> None:
    once = normalise_address(address)
    assert normalise_address(once) == once
    assert once == once.lower()


def test_every_resolved_record_meets_its_contract() -> None:
    """The resolver builds interaction envelopes without re-validating them (hot path)."""
    from streams.contracts import check
    from streams.sources.synthetic import SELLER_DOMAIN, generate

    events, _ = generate(5, seed=8, days=120)
    resolver = Resolver([SELLER_DOMAIN])
    for event in events:
        for out in resolver.resolve(event):
            check("envelope/1", out.envelope.to_dict())
            check(out.envelope.schema, out.envelope.payload)


def test_public_suffixes_free_mail_and_role_addresses_never_make_accounts() -> None:
    from streams.identity.resolver import can_create_account

    assert registered_domain("mail.bbc.co.uk") == "bbc.co.uk"
    assert registered_domain("co.uk") == ""
    assert not can_create_account("someone@co.uk")
    assert not can_create_account("friend@hotmail.com")
    assert not can_create_account("info@buyer.com")
    assert can_create_account("jane@buyer.com")
    with pytest.raises(ResolveError, match="unmatched"):
        Resolver([SELLER]).resolve(email("ann@seller.com", ["friend@hotmail.com", "info@buyer.com"]))


@pytest.mark.parametrize(
    "sender", ["hotwebcash@lists.adversend.com", "portfoliomailer@smtp.quote.com", "strat_alert@x.com"]
)
def test_bulk_senders_without_list_headers_are_automated(sender: str) -> None:
    from streams.contracts import make as make_envelope

    payload = {"message_id": "<n@x>", "from": sender, "to": ["ann@seller.com"], "sent_at": T}
    assert Resolver([SELLER]).is_automated(make_envelope("raw_email/1", "<n@x>", "test", T, payload))
