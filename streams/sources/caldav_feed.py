"""Meetings from a CalDAV calendar, continuously → ``raw_meeting/1``.

Each poll asks the server what changed since the last sync token (RFC 6578 sync-collection);
a server without it gets a full listing compared against the checkpoint (the ``caldav``
library's fallback, ETag based). Changed objects go through the ``.ics`` parser
(:func:`streams.sources.calendar.parse_calendar`), so live and exported calendars give the same
events.

A meeting is one iCal UID; each change is a new *version* of it (event id ``UID:SEQUENCE``):

* a moved or edited event normally carries a higher SEQUENCE and is sent as it is;
* a server or client that edits without raising SEQUENCE (some do) still gets a new version:
  a changed event (by a digest of its fields) at a SEQUENCE already sent is sent at the last
  sent SEQUENCE + 1, so the pipeline's event-id idempotence never drops a real change;
* ``STATUS:CANCELLED`` is a version like any other; an event deleted from the server (how most
  clients cancel) is sent as its last known version with ``status = CANCELLED`` and SEQUENCE + 1;
* an unchanged re-save (a new DTSTAMP or ETag only) sends nothing.

The checkpoint (``connectors/<name>.checkpoint.json``) holds the sync token and, per object URL,
the last sent version of each meeting: metadata only (organizer, attendees, times, the
description's *length*), as on the topic. Descriptions and titles are never read beyond the
parser, which keeps only the length.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from streams.contracts import make
from streams.sources.calendar import SOURCE, parse_calendar
from streams.sources.connector import Checkpoint, ConnectorError, ConnectorStatus, Output
from streams.sources.dataset import SourceRecord
from streams.sources.imap import Secret


@dataclass
class CalDavSettings:
    url: str  # the calendar collection, e.g. https://apidata.googleusercontent.com/caldav/v2/ID/events/
    user: str | None = None
    secret: Secret | None = None
    bearer: bool = False  # the secret is an OAuth2 access token (Google Calendar)
    poll_seconds: float = 60.0
    timeout_s: float = 30.0


def _digest(payload: dict[str, Any]) -> str:
    """What makes two versions of a meeting different (everything but the SEQUENCE)."""
    fields = {k: v for k, v in payload.items() if k != "sequence"}
    return hashlib.blake2b(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS), digest_size=12).hexdigest()


def versioned(payload: dict[str, Any], sequence: int) -> SourceRecord:
    payload = {**payload, "sequence": sequence}
    envelope = make("raw_meeting/1", f"{payload['uid']}:{sequence}", SOURCE, payload["start"], payload)
    return SourceRecord("meeting", envelope, envelope.to_bytes())


class CalDavConnector:
    """One CalDAV calendar collection; see the module docstring."""

    kind = "caldav"

    def __init__(self, name: str, settings: CalDavSettings, home: Path) -> None:
        self.name = name
        self.settings = settings
        self.checkpoint = Checkpoint(home, name)
        self.calendar: Any = None

    def connect(self) -> Any:
        from caldav.davclient import DAVClient

        s = self.settings
        secret = s.secret.read() if s.secret else None
        if s.bearer:
            headers = {"Authorization": f"Bearer {secret}"}
            client = DAVClient(url=s.url, headers=headers, timeout=int(s.timeout_s))
        else:
            client = DAVClient(url=s.url, username=s.user, password=secret, timeout=int(s.timeout_s))
        return client.calendar(url=s.url)

    def sync(self, output: Output, status: ConnectorStatus) -> None:
        from caldav.lib.error import AuthorizationError, NotFoundError

        if self.calendar is None:
            self.calendar = self.connect()
        state = self.checkpoint.load()
        token = state.get("sync_token")
        objects: dict[str, dict[str, Any]] = state.get("objects") or {}
        try:
            found = self.calendar.get_objects_by_sync_token(sync_token=token, load_objects=True)
        except AuthorizationError as exc:
            raise ConnectorError(f"CalDAV {self.settings.url}: not authorised ({exc})") from None
        except NotFoundError:
            raise ConnectorError(f"CalDAV {self.settings.url}: no such calendar collection") from None
        new_token = found.sync_token
        full = token is None or (str(new_token).startswith("fake-") and new_token != token)
        deleted = {str(url) for url in found.deleted_urls}
        seen: set[str] = set()
        for obj in found:
            href = str(obj.url.canonical())
            if href in deleted or obj.data is None:
                continue
            seen.add(href)
            self._update(href, str(obj.data).encode(), objects, output)
        gone = deleted | ({href for href in objects if href not in seen} if full else set())
        for href in sorted(gone & set(objects)):
            for meeting in objects.pop(href).values():
                if meeting["payload"]["status"] != "CANCELLED":
                    cancelled = {**meeting["payload"], "status": "CANCELLED"}
                    output.send(versioned(cancelled, meeting["sequence"] + 1))
        output.flush()  # on the broker before the token moves on
        self.checkpoint.save({"sync_token": new_token, "objects": objects})
        status.lag = 0
        listing = "full listing" if str(new_token).startswith("fake-") else "rfc6578 sync-collection"
        status.detail = {"url": self.settings.url, "objects": len(objects), "sync": listing}

    def _update(self, href: str, data: bytes, objects: dict[str, dict[str, Any]], output: Output) -> None:
        """Send the new versions of the meetings of one calendar object."""
        before = objects.get(href, {})
        after: dict[str, Any] = {}
        for item in parse_calendar(data, href):
            if not isinstance(item, SourceRecord):
                output.send(item)
                continue
            payload = item.envelope.payload
            uid, sequence, digest = payload["uid"], int(payload["sequence"]), _digest(payload)
            known = before.get(uid)
            if known is None or sequence > known["sequence"]:
                output.send(item)
            elif digest != known["digest"]:
                sequence = known["sequence"] + 1
                output.send(versioned(payload, sequence))
            else:
                sequence = known["sequence"]  # unchanged
            after[uid] = {
                "sequence": sequence,
                "digest": digest,
                "payload": {**payload, "sequence": sequence},
            }
        for uid, meeting in before.items():  # an occurrence removed from a recurring event
            if uid not in after and meeting["payload"]["status"] != "CANCELLED":
                output.send(versioned({**meeting["payload"], "status": "CANCELLED"}, meeting["sequence"] + 1))
        objects[href] = after

    def wait(self, stop: threading.Event) -> None:
        stop.wait(self.settings.poll_seconds)

    def close(self) -> None:
        self.calendar = None


def caldav_settings(config: dict[str, Any]) -> CalDavSettings:
    """A connector table (docs/connectors.md) → settings; unknown keys are errors."""
    known = {
        "kind",
        "name",
        "url",
        "user",
        "bearer",
        "password_env",
        "password_file",
        "poll_seconds",
        "timeout_s",
    }
    unknown = sorted(set(config) - known)
    if unknown:
        raise ConnectorError(f"caldav connector: unknown setting(s) {', '.join(unknown)}")
    url = str(config.get("url") or "")
    if not url.startswith(("http://", "https://")):
        raise ConnectorError(f"caldav connector: url {url!r} must be the calendar's http(s) URL")
    file = config.get("password_file")
    secret = (
        Secret(
            config.get("password_env"), Path(file).expanduser() if file else None, "RAPPORT_CALDAV_PASSWORD"
        )
        if config.get("user") or config.get("bearer")
        else None
    )
    return CalDavSettings(
        url=url,
        user=config.get("user"),
        secret=secret,
        bearer=bool(config.get("bearer", False)),
        poll_seconds=float(config.get("poll_seconds", 60.0)),
        timeout_s=float(config.get("timeout_s", 30.0)),
    )
