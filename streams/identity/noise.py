"""Automated and list mail, from header-level signals and the sender's address (never the body).

An automated message is stored and counted, never scored, and never makes its sender's
organisation a relationship. The signals, in the order they are checked:

* list headers: ``List-Id`` (or another mailing-list header), ``List-Unsubscribe``;
* ``Precedence: bulk|list|junk``; ``Auto-Submitted`` other than ``no``;
* the sender (``From``, else ``Sender``/``Return-Path``): a list manager's ``owner-…`` or
  ``…-request`` address, a bounce address, a generated address (a run of five digits or more,
  or letters and digits alternating as in ``insynconline.6gfwm6w8.d@…``), a bulk local part
  (``newsletter``, ``mailer``, ``noreply``, ``alert``, …) or a bulk subdomain (``lists.``,
  ``news.``, ``bounces.``, …), which catches newsletters from before list headers were common.

What one message cannot show — many rotating sender addresses of one domain with one-way
traffic — is judged over a mailbox by :mod:`streams.identity.relationship`. On the Enron
presto-k mailbox (which has lost its list headers) the sender rules flag 235 of its 2,204
messages: 196 by a bulk local part, 22 by a bulk subdomain, 17 by a generated address.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from streams.identity.domains import registered_domain

AUTOMATED_LOCALPARTS = frozenset(
    {
        "noreply",
        "no-reply",
        "donotreply",
        "do-not-reply",
        "mailer-daemon",
        "postmaster",
        "bounce",
        "notifications",
        "calendar-notification",
        "newsletter",
    }
)
# Bulk senders that set no List-Unsubscribe/Precedence header (common before 2005): their
# address gives them away.
BULK_LOCALPART_WORDS = (
    "newsletter",
    "mailer",
    "noreply",
    "no-reply",
    "notification",
    "alert",
    "listserv",
    "majordomo",
    "daemon",
    "digest",
    "promo",
)
BULK_SUBDOMAINS = frozenset(
    {
        "lists",
        "list",
        "news",
        "newsletter",
        "newsletters",
        "mailer",
        "mailers",
        "email",
        "e",
        "em",
        "mkt",
        "marketing",
    }
)
BOUNCE_SUBDOMAINS = frozenset({"bounce", "bounces"})
_DIGIT_RUN = re.compile(r"\d{5,}")
_KIND_SWITCH = re.compile(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])")


def _generated(local: str) -> bool:
    """A machine-made local part: five digits in a row, or a token switching letters/digits 3+ times."""
    if _DIGIT_RUN.search(local):
        return True
    return any(len(_KIND_SWITCH.findall(token)) >= 3 for token in re.split(r"[._-]", local))


@lru_cache(maxsize=65536)
def bulk_sender_reason(address: str) -> str | None:
    """Why a (normalised) sender address is a list, bounce or bulk sender; ``None`` for a person."""
    local, _, domain = address.rpartition("@")
    organisation = registered_domain(domain)
    below = domain[: -len(organisation)].rstrip(".").split(".") if organisation else []
    if local.startswith("owner-") or local.endswith("-request") or local.endswith("-owner"):
        return "list sender (owner-/-request address)"
    if "bounce" in local or any(label in BOUNCE_SUBDOMAINS for label in below):
        return "bounce sender"
    if local in AUTOMATED_LOCALPARTS or any(word in local for word in BULK_LOCALPART_WORDS):
        return "bulk sender address"
    if any(label in BULK_SUBDOMAINS for label in below):
        return "bulk sender subdomain"
    if _generated(local):
        return "generated sender address"
    return None


def is_bulk_sender(address: str) -> bool:
    return bulk_sender_reason(address) is not None


def automated_reason(email: dict[str, Any], sender: str, envelope_sender: str | None = None) -> str | None:
    """Why a ``raw_email/1`` payload is automated or list mail; ``None`` when a person sent it.

    ``sender`` and ``envelope_sender`` are the normalised From and Sender/Return-Path addresses.
    """
    if email.get("list_id"):
        return "list mail (List-Id)"
    if email.get("list_unsubscribe"):
        return "list mail (List-Unsubscribe)"
    precedence = (email.get("precedence") or "").strip().lower()
    if precedence in ("bulk", "list", "junk"):
        return f"bulk mail (Precedence: {precedence})"
    if (email.get("auto_submitted") or "no").strip().lower() != "no":
        return "automated (Auto-Submitted)"
    for address in (sender, envelope_sender):
        reason = bulk_sender_reason(address) if address else None
        if reason:
            return reason
    return None
