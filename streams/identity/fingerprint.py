"""Copies of one message: a content fingerprint beside the Message-ID (never the body).

Enron's export gives each folder copy of a message its own Message-ID (``sent``, ``sent_items``,
``all_documents`` and ``discussion_threads`` all hold the same outbound mail), and re-exports
renumber them too, so event ids alone miss copies. Two emails are copies when they have the same
sender, the same sorted recipients (To and Cc, normalised), the same minute (UTC) and the same
normalised subject hash (``Re:``/``Fw:`` stripped, as the parser keeps it). Without a subject
the time counts to the second: two quick subject-less notes to one person are two messages
(the generated demo year has two such pairs a minute apart), while folder copies keep their
Date to the second. Measured on presto-k: 2,203 readable messages, 2,082 fingerprints, so 121
folder copies (inflation 1.058× before, 1.00× after; its seller-sent mail 1,784 → 1,696, 1.052×).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from streams.contracts import Envelope, parse_time
from streams.identity.directory import normalise_address


def content_fingerprint(email: dict[str, Any]) -> str:
    """The fingerprint of a ``raw_email/1`` payload: sender, recipients, minute, subject hash."""
    sender = normalise_address(email["from"])
    recipients = sorted({normalise_address(a) for a in [*email.get("to", []), *email.get("cc", [])]})
    subject = email.get("subject_hash") or ""
    when = parse_time(email["sent_at"]).strftime("%Y-%m-%dT%H:%M" if subject else "%Y-%m-%dT%H:%M:%S")
    text = "\n".join([sender, ",".join(recipients), when, subject])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class Copies:
    """Which envelopes were seen before, by event id or (emails) by content fingerprint."""

    seen: dict[str, str] = field(default_factory=dict, repr=False)  # event id or fingerprint → first id

    def original_of(self, envelope: Envelope) -> tuple[str, str] | None:
        """``(how, first event id)`` if ``envelope`` repeats one seen before, else ``None`` (and remember it).

        ``how`` is ``"message_id"`` (the same event id again) or ``"fingerprint"`` (a copy under a
        new Message-ID).
        """
        if envelope.event_id in self.seen:
            return "message_id", self.seen[envelope.event_id]
        keys = [envelope.event_id]
        if envelope.schema == "raw_email/1":
            fingerprint = "fingerprint:" + content_fingerprint(envelope.payload)
            if fingerprint in self.seen:
                self.seen[envelope.event_id] = self.seen[fingerprint]
                return "fingerprint", self.seen[fingerprint]
            keys.append(fingerprint)
        for key in keys:
            self.seen[key] = envelope.event_id
        return None
