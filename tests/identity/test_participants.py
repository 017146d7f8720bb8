"""Which organisation an email belongs to: the sender's (inbound) or the To recipients' (outbound)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.contracts import make
from streams.identity.resolver import ResolveError, Resolver

T = "2001-10-02T10:00:00.000Z"
SELLER = "enron.com"
ORGS = ["acme.com", "globex.com", "initech.com", "umbrella.com", "aardvark.com"]

people = st.sampled_from(["bob", "cat", "dan", "eve"])
outsiders = st.builds(lambda p, o: f"{p}@{o}", people, st.sampled_from(ORGS))
sellers = st.builds(lambda p: f"{p}@enron.com", st.sampled_from(["ann", "kevin.presto", "joe"]))


def email(sender: str, to: list[str], cc: list[str] | None = None, **extra: object):  # type: ignore[no-untyped-def]
    mid = f"<{sender}-{'-'.join(to)}-{len(cc or [])}@x>"
    payload = {"message_id": mid, "from": sender, "to": to, "cc": cc or [], "sent_at": T, **extra}
    return make("raw_email/1", mid, "test", T, payload)


def org(address: str) -> str:
    return address.rpartition("@")[2]


@given(sender=outsiders, seller=sellers, cc=st.lists(outsiders, max_size=4), cc_first=st.booleans())
def test_inbound_mail_belongs_to_the_senders_organisation(sender, seller, cc, cc_first) -> None:
    """However many other organisations are cc'd, and in whatever order, the reply stays the sender's."""
    to = [*cc, seller] if cc_first else [seller, *cc]
    (out,) = Resolver([SELLER]).resolve(email(sender, to, cc))
    assert out.account_id == org(sender)
    assert out.envelope.payload["direction"] == "inbound"


@given(seller=sellers, to=st.lists(outsiders, min_size=1, max_size=4), cc=st.lists(outsiders, max_size=4))
def test_outbound_mail_belongs_to_its_to_recipients_organisation(seller, to, cc) -> None:
    """The most addressed To organisation (ties: the first addressed); a cc'd third party never wins."""
    (out,) = Resolver([SELLER]).resolve(email(seller, to, cc))
    people = list(dict.fromkeys(to))
    counts = {o: sum(1 for a in people if org(a) == o) for o in map(org, people)}
    best = max(counts.values())
    expected = next(org(a) for a in people if counts[org(a)] == best)
    assert out.account_id == expected
    assert out.envelope.payload["direction"] == "outbound"


@given(sender=outsiders, to=st.lists(outsiders, min_size=1, max_size=4))
def test_mail_without_a_seller_participant_is_rejected_with_its_reason(sender, to) -> None:
    with pytest.raises(ResolveError, match="no seller participant"):
        Resolver([SELLER]).resolve(email(sender, to))


def test_a_cc_d_third_party_alphabetically_first_does_not_take_the_reply() -> None:
    (out,) = Resolver([SELLER]).resolve(email("bob@umbrella.com", ["ann@enron.com"], ["cat@aardvark.com"]))
    assert out.account_id == "umbrella.com"  # before: aardvark.com, the alphabetically first domain


def test_mangled_seller_addresses_are_normalised_before_counting_people() -> None:
    (out,) = Resolver([SELLER]).resolve(
        email("bob@acme.com", ["cliff'.'baxter@enron.com", "Cliff.Baxter@enron.com", "m..presto@enron.com"])
    )
    assert out.envelope.payload["sellers"] == ["cliff.baxter@enron.com", "m.presto@enron.com"]


def test_a_buyer_rewritten_into_the_seller_domain_is_a_buyer() -> None:
    wrapped = "IMCEANOTES-+22Tim+20Kramer+22+20+3Ctjkramer+40duke-energy+2Ecom+3E+40ENRON@ENRON.com"
    (out,) = Resolver([SELLER]).resolve(email("ann@enron.com", [wrapped]))
    assert out.account_id == "duke-energy.com"
    assert out.envelope.payload["buyers"] == ["tjkramer@duke-energy.com"]


def test_the_sellers_personal_address_is_seller_side_and_an_affiliate_is_reported() -> None:
    from streams.identity.people import name_key

    resolver = Resolver([SELLER])
    kevin = name_key("Presto, Kevin M.")
    resolver.resolve(email("m..presto@enron.com", ["bob@acme.com"], from_name_key=kevin))
    # his home address, signed with his name: seller-side, so the mail to himself is internal
    with pytest.raises(ResolveError, match="own personal address"):
        resolver.resolve(
            email("kmpresto@hotmail.com", ["m..presto@enron.com"], from_name_key=name_key("Kevin Presto"))
        )
    # another Presto is another person
    (family,) = resolver.resolve(
        email("darrin_presto@school.edu", ["m..presto@enron.com"], from_name_key=name_key("Darrin Presto"))
    )
    assert family.account_id == "school.edu"
    # the same person on another organisation's domain: kept outside, flagged as the seller's twin
    (affiliate,) = resolver.resolve(
        email("kevin_presto@enron-affiliate.net", ["joe@enron.com"], from_name_key=name_key("Kevin Presto"))
    )
    assert affiliate.envelope.payload["detail"]["sender_seller_twin"] == "m.presto@enron.com"
