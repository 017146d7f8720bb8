"""Deterministic synthetic data: a year of email, meeting and CRM events with planted personas.

Each account gets a persona whose engagement curve drives how buyers answer, meet and cancel;
each seller is well or poorly prepared, which drives agendas, invitation lead time, CRM prep
notes and follow-ups. The personas are written beside the data (``labels.json``) so scoring
quality can be measured against what was planted. The same seed always gives the same bytes.

``dirty=True`` adds what real mailboxes hold besides relationships (:meth:`Generator.dirt`):
newsletters, list mail, folder copies under new Message-IDs, a cc'd third party that never
writes, the sellers' personal mail, an affiliate whose people also write from the seller
domain, one-way prospects, and a counterparty that corresponds and then goes silent with no
seller follow-up. It is opt-in, and it only adds events: the clean accounts' events are the
same bytes with or without it (generated first, from the same seed). ``labels.json`` says which
organisations are relationships (every CRM account, and the one that goes silent) and what
each piece of dirt is (``noise``).
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.contracts import Envelope, format_time, make
from streams.identity.people import name_key

SELLER_DOMAIN = "demo-seller.com"
SOURCE = "synthetic"

PERSONAS = (
    ("thriving", 0.20),
    ("steady", 0.25),
    ("slowly_disengaging", 0.20),
    ("single_threaded", 0.15),
    ("champion_leaves", 0.10),
    ("seller_handoff", 0.10),
)
STAGES = ("Prospecting", "Qualification", "Proposal", "Negotiation")
WORDS = (
    "north",
    "blue",
    "iron",
    "cedar",
    "summit",
    "harbor",
    "atlas",
    "pioneer",
    "silver",
    "maple",
    "quantum",
    "river",
    "granite",
    "bright",
    "falcon",
    "evergreen",
    "vertex",
    "orbit",
    "crown",
    "delta",
    "lumen",
    "nova",
    "prairie",
    "copper",
    "willow",
    "zenith",
    "coral",
    "ember",
    "forge",
)
SUFFIXES = ("labs", "works", "systems", "group", "logistics", "health", "foods", "energy", "bank")
FIRST = (
    "ana",
    "ben",
    "carla",
    "dev",
    "elena",
    "farid",
    "grace",
    "hugo",
    "ines",
    "jon",
    "kira",
    "liam",
    "maya",
    "nico",
    "olga",
    "pavel",
    "quinn",
    "rosa",
    "sam",
    "tara",
    "umar",
    "vera",
    "wei",
    "yara",
)
LAST = (
    "adams",
    "berg",
    "costa",
    "diaz",
    "evans",
    "fischer",
    "garcia",
    "hansen",
    "ito",
    "jones",
    "kowalski",
    "lopez",
    "moreau",
    "nakamura",
    "okafor",
    "patel",
    "quist",
    "rossi",
    "schmidt",
)
TITLES = (  # (title, seniority, function)
    ("Chief Financial Officer", "exec", "finance"),
    ("Chief Technology Officer", "exec", "it"),
    ("VP Operations", "senior", "operations"),
    ("VP Procurement", "senior", "procurement"),
    ("Director of IT", "senior", "it"),
    ("Head of Finance", "senior", "finance"),
    ("Operations Manager", "manager", "operations"),
    ("IT Manager", "manager", "it"),
    ("Procurement Manager", "manager", "procurement"),
    ("Business Analyst", "individual", "operations"),
    ("Systems Engineer", "individual", "it"),
    ("Accountant", "individual", "finance"),
)


@dataclass
class Seller:
    email: str
    name: str
    team: str
    prep: str  # "well_prepared" | "poorly_prepared"


@dataclass
class Contact:
    email: str
    name: str
    title: str
    reply_hours: float  # this contact's own typical reply delay
    leaves_at: datetime | None = None


@dataclass
class Account:
    account_id: str
    name: str
    domain: str
    persona: str
    owner: Seller
    second: Seller | None
    contacts: list[Contact]
    label: dict[str, Any] = field(default_factory=dict)


def _uid(*parts: object) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:20]


class Generator:
    """Builds the events of one dataset; use :func:`generate`."""

    def __init__(self, accounts: int, seed: int, start: datetime, days: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.start = start
        self.days = days
        self.end = start + timedelta(days=days)
        self.events: list[Envelope] = []
        self.labels_noise: dict[str, dict[str, Any]] = {}
        self.sellers = self._sellers(max(4, accounts // 8))
        self.accounts = [self._account(i) for i in range(accounts)]

    # --- cast -------------------------------------------------------------------------------

    def _person(self, index: int) -> tuple[str, str]:
        first = FIRST[index % len(FIRST)]
        last = LAST[(index * 7 + index // len(FIRST)) % len(LAST)]
        return f"{first}.{last}", f"{first.title()} {last.title()}"

    def _sellers(self, n: int) -> list[Seller]:
        sellers = []
        for i in range(n):
            handle, name = self._person(i * 5 + 3)
            sellers.append(
                Seller(
                    email=f"{handle}{i}@{SELLER_DOMAIN}",
                    name=name,
                    team=("East", "West", "Central")[i % 3],
                    prep="well_prepared" if i % 2 == 0 else "poorly_prepared",
                )
            )
        return sellers

    def _persona(self) -> str:
        x = self.rng.random()
        for persona, share in PERSONAS:
            x -= share
            if x < 0:
                return persona
        return PERSONAS[-1][0]

    def _account(self, i: int) -> Account:
        rng = self.rng
        word = WORDS[i % len(WORDS)]
        suffix = SUFFIXES[(i // len(WORDS)) % len(SUFFIXES)]
        domain = f"{word}{suffix}{i:03d}.com"
        persona = self._persona()
        owner = self.sellers[i % len(self.sellers)]
        second = None
        if persona in ("thriving", "steady") and rng.random() < 0.6:
            second = self.sellers[(i + 1) % len(self.sellers)]
        n_contacts = 1 if persona == "single_threaded" else rng.randint(4, 9)
        contacts = []
        titles = rng.sample(TITLES, n_contacts)
        for j, (title, _, _) in enumerate(titles):
            handle, name = self._person(i * 11 + j)
            contacts.append(Contact(f"{handle}@{domain}", name, title, rng.uniform(2, 30)))
        label: dict[str, Any] = {"persona": persona, "domain": domain, "owner": owner.email}
        if persona == "slowly_disengaging":
            d0 = self.start + timedelta(days=rng.randint(120, 200))
            label["disengage_start"] = format_time(d0)
            label["disengage_complete"] = format_time(d0 + timedelta(days=rng.randint(60, 90)))
        if persona == "champion_leaves":
            champion = contacts[0]
            champion.leaves_at = self.start + timedelta(days=rng.randint(150, 250))
            label["champion"] = champion.email
            label["champion_leaves_at"] = format_time(champion.leaves_at)
        if persona == "seller_handoff":
            label["handoff_at"] = format_time(self.start + timedelta(days=rng.randint(150, 250)))
            label["new_owner"] = self.sellers[(i + 2) % len(self.sellers)].email
        return Account(
            domain,
            f"{word.title()} {suffix.title()} {i:03d}",
            domain,
            persona,
            owner,
            second,
            contacts,
            label,
        )

    # --- behaviour --------------------------------------------------------------------------

    def engagement(self, account: Account, at: datetime) -> float:
        """The planted buyer engagement in [0, 1] at a moment."""
        persona = account.persona
        day = (at - self.start).total_seconds() / 86400
        if persona == "thriving":
            return min(1.0, 0.8 + day / 1000)
        if persona == "slowly_disengaging":
            d0 = (datetime.fromisoformat(account.label["disengage_start"]) - self.start).days
            d1 = (datetime.fromisoformat(account.label["disengage_complete"]) - self.start).days
            if day < d0:
                return 0.85
            return max(0.03, 0.85 - 0.82 * min(1.0, (day - d0) / (d1 - d0)))
        if persona == "single_threaded":
            return 0.6
        return 0.7

    def owner_at(self, account: Account, at: datetime) -> Seller:
        handoff = account.label.get("handoff_at")
        if handoff and at >= datetime.fromisoformat(handoff):
            return next(s for s in self.sellers if s.email == account.label["new_owner"])
        return account.owner

    def active_contacts(self, account: Account, at: datetime) -> list[Contact]:
        return [c for c in account.contacts if c.leaves_at is None or at < c.leaves_at]

    # --- events -----------------------------------------------------------------------------

    def emit(self, schema: str, event_id: str, at: datetime, payload: dict[str, Any]) -> None:
        if self.start <= at < self.end:
            self.events.append(make(schema, event_id, SOURCE, format_time(at), payload))

    def email(
        self,
        sender: str,
        to: list[str],
        at: datetime,
        *,
        reply_to: str | None = None,
        automated: bool = False,
        cc: list[str] | None = None,
        **headers: Any,
    ) -> str:
        message_id = f"<{_uid('mail', self.seed, sender, at.isoformat(), *to)}@{sender.split('@')[1]}>"
        self.emit(
            "raw_email/1",
            message_id,
            at,
            {
                "message_id": message_id,
                "from": sender,
                "to": to,
                "cc": cc or [],
                "sent_at": format_time(at),
                "in_reply_to": reply_to,
                "references": [reply_to] if reply_to else [],
                "subject": None,
                "size_bytes": self.rng.randint(800, 60_000),
                "has_attachments": self.rng.random() < 0.15,
                "list_unsubscribe": automated,
                "auto_submitted": None,
                "precedence": "bulk" if automated else None,
                **headers,
            },
        )
        return message_id

    def week(self, account: Account, week_start: datetime) -> None:
        rng = self.rng
        e = self.engagement(account, week_start)
        owner = self.owner_at(account, week_start)
        sellers = [owner] + ([account.second] if account.second else [])
        contacts = self.active_contacts(account, week_start)
        if not contacts:
            return
        for _ in range(rng.randint(2, 4)):
            seller = rng.choice(sellers)
            at = week_start + timedelta(hours=rng.uniform(0, 120))
            buyers = rng.sample(contacts, min(len(contacts), rng.choice((1, 1, 2))))
            sent = self.email(seller.email, [b.email for b in buyers], at)
            for buyer in buyers:
                if rng.random() < 0.85 * e:
                    delay = buyer.reply_hours * rng.lognormvariate(0, 0.5) / max(e, 0.2)
                    self.email(buyer.email, [seller.email], at + timedelta(hours=delay), reply_to=sent)
        if rng.random() < 0.6 * e:
            buyer = rng.choice(contacts)
            at = week_start + timedelta(hours=rng.uniform(0, 120))
            asked = self.email(buyer.email, [owner.email], at)
            self.email(owner.email, [buyer.email], at + timedelta(hours=rng.uniform(1, 24)), reply_to=asked)
        if rng.random() < 0.5:
            at = week_start + timedelta(hours=rng.uniform(0, 160))
            self.email(f"noreply@{account.domain}", [owner.email], at, automated=True)
        every = 1 if account.persona == "thriving" else 2
        if (week_start - self.start).days // 7 % every == 0 and rng.random() < 0.3 + 0.6 * e:
            self.meeting(
                account,
                owner,
                contacts,
                week_start + timedelta(days=rng.randint(1, 4), hours=rng.randint(8, 16)),
                e,
            )

    def meeting(
        self, account: Account, seller: Seller, contacts: list[Contact], start: datetime, e: float
    ) -> None:
        rng = self.rng
        prepared = seller.prep == "well_prepared"
        uid = f"{_uid('mtg', self.seed, account.account_id, start.isoformat())}@{SELLER_DOMAIN}"
        buyers = rng.sample(contacts, min(len(contacts), rng.randint(1, 4)))
        lead = timedelta(days=rng.uniform(5, 12)) if prepared else timedelta(hours=rng.uniform(2, 30))
        created = start - lead
        attendees = [{"email": seller.email, "partstat": "ACCEPTED", "role": "CHAIR"}] + [
            {
                "email": b.email,
                "partstat": "ACCEPTED" if rng.random() < 0.5 + 0.5 * e else "NEEDS-ACTION",
                "role": "REQ-PARTICIPANT",
            }
            for b in buyers
        ]
        payload = {
            "uid": uid,
            "sequence": 0,
            "organizer": seller.email,
            "attendees": attendees,
            "start": format_time(start),
            "end": format_time(start + timedelta(minutes=rng.choice((30, 45, 60)))),
            "status": "CONFIRMED",
            "created": format_time(created),
            "description_length": rng.randint(200, 900) if prepared or rng.random() < 0.1 else 0,
            "title": None,
        }
        self.emit("raw_meeting/1", f"{uid}:0", start, payload)
        if prepared:
            self.emit(
                "crm_activity/1",
                f"activity:{uid}:prep",
                start - timedelta(days=rng.uniform(0.5, 2)),
                {
                    "activity_id": f"{uid}:prep",
                    "account_id": account.account_id,
                    "owner": seller.email,
                    "type": "note",
                    "contact_emails": [],
                    "at": format_time(start - timedelta(days=1)),
                },
            )
            self.email(seller.email, [b.email for b in buyers], created + timedelta(hours=1))
        if rng.random() < (1 - e) * 0.5:
            cancelled = dict(payload, sequence=1, status="CANCELLED")
            self.emit("raw_meeting/1", f"{uid}:1", start, cancelled)
            return
        if prepared or rng.random() < 0.25:
            self.email(seller.email, [b.email for b in buyers], start + timedelta(hours=rng.uniform(2, 20)))

    def crm(self, account: Account) -> None:
        rng = self.rng
        t0 = self.start + timedelta(hours=rng.uniform(0, 24))
        self.emit(
            "crm_account/1",
            f"account:{account.account_id}:0",
            t0,
            {
                "account_id": account.account_id,
                "name": account.name,
                "domains": [account.domain],
                "owner": account.owner.email,
                "industry": None,
                "updated_at": format_time(t0),
            },
        )
        for contact in account.contacts:
            self.emit(
                "crm_contact/1",
                f"contact:{contact.email}:0",
                t0,
                {
                    "contact_id": contact.email,
                    "account_id": account.account_id,
                    "email": contact.email,
                    "name": contact.name,
                    "title": contact.title,
                    "active": True,
                    "updated_at": format_time(t0),
                },
            )
            if contact.leaves_at:
                self.emit(
                    "crm_contact/1",
                    f"contact:{contact.email}:1",
                    contact.leaves_at + timedelta(days=20),
                    {
                        "contact_id": contact.email,
                        "account_id": account.account_id,
                        "email": contact.email,
                        "name": contact.name,
                        "title": contact.title,
                        "active": False,
                        "updated_at": format_time(contact.leaves_at + timedelta(days=20)),
                    },
                )
        if "handoff_at" in account.label:
            at = datetime.fromisoformat(account.label["handoff_at"])
            self.emit(
                "crm_account/1",
                f"account:{account.account_id}:1",
                at,
                {
                    "account_id": account.account_id,
                    "name": account.name,
                    "domains": [account.domain],
                    "owner": account.label["new_owner"],
                    "industry": None,
                    "updated_at": format_time(at),
                },
            )
        opened = t0 + timedelta(days=rng.randint(10, 120))
        opportunity = f"opp-{account.account_id}"
        stage_days = math.ceil(40 / max(self.engagement(account, opened), 0.2))
        for n, stage in enumerate(STAGES):
            at = opened + timedelta(days=n * stage_days)
            status = "open"
            if self.engagement(account, at) < 0.3:
                stage, status = "Closed Lost", "lost"
            self.emit(
                "crm_opportunity/1",
                f"opportunity:{opportunity}:{n}",
                at,
                {
                    "opportunity_id": opportunity,
                    "account_id": account.account_id,
                    "stage": stage,
                    "status": status,
                    "amount": float(rng.randint(5, 200) * 1000),
                    "owner": self.owner_at(account, at).email,
                    "created_at": format_time(opened),
                    "close_date": None,
                    "next_step": None,
                    "updated_at": format_time(at),
                },
            )
            if status == "lost":
                break

    def run(self, dirty: bool = False) -> None:
        for account in self.accounts:
            self.crm(account)
            week = self.start
            while week < self.end:
                self.week(account, week)
                week += timedelta(days=7)
        if dirty:  # after the clean events, so theirs stay the same bytes
            self.dirt()
        self.events.sort(key=lambda env: (env.occurred_at, env.event_id))

    # --- dirt -------------------------------------------------------------------------------

    def weekly(self, every_days: int = 7) -> list[datetime]:
        days = range(0, self.days, every_days)
        return [self.start + timedelta(days=d, hours=self.rng.uniform(6, 18)) for d in days]

    def dirt(self) -> None:
        """Newsletters, lists, copies, a cc'd third party, personal mail, an affiliate, prospects."""
        rng = self.rng
        noise: dict[str, dict[str, Any]] = {}
        owners = sorted({a.owner.email for a in self.accounts})
        for at in self.weekly():  # a newsletter without list headers, and one with them
            self.email("newsletter@gridweek-news.com", [rng.choice(owners)], at)
            self.email("editor@powermarkets.com", [rng.choice(owners)], at, list_unsubscribe=True)
        noise["gridweek-news.com"] = {"kind": "newsletter", "reason": "automated"}
        noise["powermarkets.com"] = {"kind": "newsletter", "reason": "automated"}
        for at in self.weekly(3):  # list mail, addressed to the list, sent by its manager
            member = f"m{rng.randint(1, 40)}@utility{rng.randint(1, 9)}.org"
            self.email(
                member, ["traders@lists.gridforum.org"], at, list_id=True,
                envelope_sender="owner-traders@lists.gridforum.org",
            )  # fmt: skip
        noise["gridforum.org"] = {"kind": "list", "reason": "no seller participant"}
        for n, at in enumerate(self.weekly(2)):  # offers from rotating generated addresses
            self.email(f"offer{n}.{rng.randint(10**6, 10**7)}@mail.cardrewards.com", [rng.choice(owners)], at)
        noise["cardrewards.com"] = {"kind": "rotating_senders", "reason": "automated"}
        self.copies(noise)
        self.third_party(noise)
        self.personal(noise)
        self.affiliate(noise)
        self.prospects(noise)
        self.labels_noise = noise

    def copies(self, noise: dict[str, dict[str, Any]]) -> None:
        """Folder copies: a share of the sellers' mail again under new Message-IDs (sent, all documents)."""
        outbound = [
            e
            for e in self.events
            if e.schema == "raw_email/1" and e.payload["from"].endswith("@" + SELLER_DOMAIN)
        ]
        copies = 0
        for original in outbound:
            if self.rng.random() < 0.3:
                for folder in ("sent_items", "all_documents")[: self.rng.randint(1, 2)]:
                    mid = f"<{_uid('copy', folder, original.event_id)}@{SELLER_DOMAIN}>"
                    payload = dict(original.payload, message_id=mid)
                    self.events.append(make("raw_email/1", mid, SOURCE, original.occurred_at, payload))
                    copies += 1
        noise["folder_copies"] = {"kind": "folder_copies", "count": copies}

    def third_party(self, noise: dict[str, dict[str, Any]]) -> None:
        """An adviser cc'd on buyers' mail who never writes: its domain must not take the mail."""
        adviser = "pat.quist@aardvark-advisors.com"  # alphabetically first, as the old rule picked
        for account in self.accounts[:3]:
            for at in self.weekly(30):
                buyer = self.rng.choice(account.contacts)
                self.email(buyer.email, [account.owner.email], at, cc=[adviser])
        noise["aardvark-advisors.com"] = {"kind": "cc_third_party", "reason": "never an account"}

    def personal(self, noise: dict[str, dict[str, Any]]) -> None:
        """Sellers forward from home to work (their name signs both) and hear from family at an ISP."""
        for seller in self.sellers[:2]:
            handle = seller.email.split("@")[0].rstrip("0123456789")
            home = f"{handle}.home@gmail.com"
            key = name_key(seller.name)
            for at in self.weekly(14):
                self.email(seller.email, [self.accounts[0].contacts[0].email], at, from_name_key=key)
                self.email(home, [seller.email], at + timedelta(hours=2), from_name_key=key)
                self.email(f"family.{handle}@swbell.net", [seller.email], at + timedelta(hours=5))
            noise[home] = {"kind": "seller_personal_address", "reason": "seller-side"}
        noise["swbell.net"] = {"kind": "personal_isp", "reason": "free-mail/ISP"}

    def affiliate(self, noise: dict[str, dict[str, Any]]) -> None:
        """The seller's sister company: its people also write from the seller domain."""
        seller = self.sellers[-1]
        key = name_key(seller.name)
        handle = seller.email.split("@")[0].rstrip("0123456789")
        colleague = self.sellers[0].email
        for at in self.weekly(10):
            self.email(seller.email, [self.accounts[-1].contacts[0].email], at, from_name_key=key)
            sent = self.email(
                f"{handle}@demo-seller-energy.com", [colleague], at + timedelta(hours=3), from_name_key=key
            )
            self.email(
                colleague, [f"{handle}@demo-seller-energy.com"], at + timedelta(hours=6), reply_to=sent
            )
        noise["demo-seller-energy.com"] = {
            "kind": "affiliate",
            "reason": "affiliate (suggested seller domain)",
        }

    def prospects(self, noise: dict[str, dict[str, Any]]) -> None:
        """One-way prospects both ways, and a counterparty that answers for months then goes silent."""
        owner = self.accounts[0].owner.email
        for at in self.weekly(20):
            self.email("buyer@coldlead-industries.com", [owner], at)  # inbound, never followed up
            self.email(owner, ["cfo@unanswered-corp.com"], at + timedelta(hours=1))  # never answered
        noise["coldlead-industries.com"] = {"kind": "silent_counterparty", "reason": "one-way inbound"}
        noise["unanswered-corp.com"] = {"kind": "unanswered_prospect", "reason": "one-way outbound"}
        silent_from = self.start + timedelta(days=self.days // 2)
        for at in self.weekly(4):
            if at >= silent_from:
                break
            asked = self.email("lee.ito@quietco-partners.com", [owner], at)
            self.email(owner, ["lee.ito@quietco-partners.com"], at + timedelta(hours=4), reply_to=asked)
        noise["quietco-partners.com"] = {
            "kind": "goes_silent",
            "reason": None,
            "relationship": True,
            "silent_from": format_time(silent_from),
        }


def generate(
    accounts: int, seed: int, start: datetime | None = None, days: int = 365, dirty: bool = False
) -> tuple[list[Envelope], dict[str, Any]]:
    """Events sorted by event time, and the labels of what was planted (``dirty``: see the module)."""
    if accounts < 1:
        raise ValueError(f"--accounts must be at least 1, got {accounts}")
    start = start or datetime(2025, 7, 1, tzinfo=UTC)
    gen = Generator(accounts, seed, start, days)
    gen.run(dirty)
    labels = {
        "seed": seed,
        "start": format_time(start),
        "days": days,
        "seller_domains": [SELLER_DOMAIN],
        "accounts": {a.account_id: a.label for a in gen.accounts},
        "sellers": {s.email: {"name": s.name, "team": s.team, "prep": s.prep} for s in gen.sellers},
        # every CRM account is a relationship; the dirt says per organisation what it is
        "relationships": sorted(
            [a.account_id for a in gen.accounts] + (["quietco-partners.com"] if dirty else [])
        ),
    }
    if dirty:
        labels["noise"] = gen.labels_noise
    return gen.events, labels
