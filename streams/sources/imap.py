"""Mail from an IMAP server, continuously → ``raw_email/1`` (headers only).

Initial sync of the chosen folders, then IMAP IDLE on the first folder (polling where the server
has no IDLE), re-checking every folder at least every ``poll_seconds``. Only
``BODY.PEEK[HEADER]`` and ``RFC822.SIZE`` are fetched: the body never crosses the network to
Rapport, and PEEK leaves the ``\\Seen`` flag alone. Each message goes through the mail files'
parser (:func:`streams.sources.mail.parse_message`), so IMAP and exported mail give the same
events and event ids (the Message-ID).

Checkpoint per folder: ``UIDVALIDITY`` and the last UID sent. A changed UIDVALIDITY (the server
renumbered the folder) reads the folder again from the start; the repeats carry the same event
ids and the pipeline drops them.

Secrets: a password or an OAuth2 access token (XOAUTH2, Gmail and Microsoft 365), from an
environment variable or a file, read again at every (re)connect so an external token refresher
can replace the file. Never from the command line.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from streams.contracts import make
from streams.sources.connector import Checkpoint, ConnectorError, ConnectorStatus, Output
from streams.sources.dataset import SourceRecord
from streams.sources.mail import SOURCE, parse_message

log = logging.getLogger(__name__)

FETCH_CHUNK = 200  # UIDs per FETCH: one round trip per 200 headers
IDLE_CHECK_S = 1.0  # how often an IDLE wait looks at the stop flag


@dataclass(frozen=True)
class Secret:
    """Where the password or token comes from: an environment variable or a file."""

    env: str | None = None
    file: Path | None = None
    default_env: str = "RAPPORT_IMAP_PASSWORD"

    def read(self) -> str:
        if self.file is not None:
            try:
                value = self.file.read_text().strip()
            except OSError as exc:
                raise ConnectorError(f"cannot read the secret file {self.file}: {exc.strerror}") from None
            if not value:
                raise ConnectorError(f"the secret file {self.file} is empty")
            return value
        name = self.env or self.default_env
        value = os.environ.get(name, "").strip()
        if not value:
            raise ConnectorError(
                f"no secret: set {name} in the environment, or name a file (password_file / "
                "--password-file); secrets are never taken from the command line"
            )
        return value


@dataclass
class ImapSettings:
    host: str
    user: str
    secret: Secret = field(default_factory=Secret)
    folders: tuple[str, ...] = ("INBOX",)
    port: int | None = None
    tls: bool = True  # implicit TLS (993); False: plain (tests, 127.0.0.1) or STARTTLS with starttls
    starttls: bool = False
    xoauth2: bool = False
    keep_subject: bool = False
    poll_seconds: float = 60.0
    timeout_s: float = 30.0
    idle: bool = True  # False: poll even where the server offers IDLE (proxies that cut idle links)


def with_size(record: SourceRecord, size: int) -> SourceRecord:
    """The record with the message's full size (the parser saw only the header block)."""
    payload = {**record.envelope.payload, "size_bytes": size}
    envelope = make(
        record.envelope.schema, record.envelope.event_id, SOURCE, record.envelope.occurred_at, payload
    )
    return SourceRecord(record.source, envelope, envelope.to_bytes())


class ImapConnector:
    """One IMAP account; see the module docstring."""

    kind = "imap"

    def __init__(self, name: str, settings: ImapSettings, home: Path) -> None:
        self.name = name
        self.settings = settings
        self.checkpoint = Checkpoint(home, name)
        self.client: IMAPClient | None = None
        self.idle_capable = False

    def connect(self) -> IMAPClient:
        s = self.settings
        port = s.port or (993 if s.tls else 143)
        context = ssl.create_default_context() if s.tls or s.starttls else None
        client = IMAPClient(s.host, port=port, ssl=s.tls, ssl_context=context, timeout=s.timeout_s)
        try:
            if s.starttls:
                client.starttls(context)
            secret = s.secret.read()
            if s.xoauth2:
                client.oauth2_login(s.user, secret)
            else:
                client.login(s.user, secret)
        except LoginError as exc:
            client.shutdown()
            raise ConnectorError(f"IMAP login as {s.user} at {s.host} refused: {exc}") from None
        except Exception:
            client.shutdown()
            raise
        self.idle_capable = b"IDLE" in client.capabilities()
        return client

    def sync(self, output: Output, status: ConnectorStatus) -> None:
        if self.client is None:
            self.client = self.connect()
        state = self.checkpoint.load()
        folders: dict[str, Any] = dict(state.get("folders") or {})
        for folder in self.settings.folders:
            self._sync_folder(self.client, folder, folders, output)
        status.lag = 0  # every message the folders held when read has been sent
        status.detail = {
            "host": self.settings.host,
            "user": self.settings.user,
            "folders": folders,
            "idle": self.idle_capable and self.settings.idle,
        }

    def _sync_folder(self, client: IMAPClient, folder: str, folders: dict[str, Any], output: Output) -> None:
        try:
            selected = client.select_folder(folder, readonly=True)
        except IMAPClientAbortError:
            raise  # the connection broke: reconnect with backoff
        except IMAPClientError as exc:  # the server says no: a configuration error
            raise ConnectorError(f"IMAP folder {folder!r} at {self.settings.host}: {exc}") from None
        validity = int(selected[b"UIDVALIDITY"])
        known = folders.get(folder) or {}
        last = int(known.get("last_uid", 0)) if known.get("uidvalidity") == validity else 0
        if known and known.get("uidvalidity") != validity:
            log.warning("%s: UIDVALIDITY of %s changed; reading the folder again", self.name, folder)
        # "N:*" always matches the newest message, even when its UID is below N: filter.
        uids = sorted(u for u in client.search(["UID", f"{last + 1}:*"]) if u > last)
        for start in range(0, len(uids), FETCH_CHUNK):
            chunk = uids[start : start + FETCH_CHUNK]
            fetched = client.fetch(chunk, ["BODY.PEEK[HEADER]", "RFC822.SIZE"])
            for uid in chunk:
                if uid not in fetched:
                    continue  # expunged between SEARCH and FETCH: no message, nothing to send
                data = fetched[uid]
                header = data.get(b"BODY[HEADER]") or b""
                origin = f"imap://{self.settings.user}@{self.settings.host}/{folder};UID={uid}"
                item = parse_message(header, origin, self.settings.keep_subject)
                if isinstance(item, SourceRecord) and data.get(b"RFC822.SIZE"):
                    item = with_size(item, int(data[b"RFC822.SIZE"]))
                output.send(item)
            output.flush()  # on the broker before the checkpoint moves past these UIDs
            folders[folder] = {"uidvalidity": validity, "last_uid": chunk[-1], "synced_at": time.time()}
            self.checkpoint.save({"folders": folders})
        if folder not in folders or folders[folder].get("uidvalidity") != validity:
            folders[folder] = {"uidvalidity": validity, "last_uid": last, "synced_at": time.time()}
            self.checkpoint.save({"folders": folders})

    def wait(self, stop: threading.Event) -> None:
        """IDLE on the first folder until it reports a change, ``poll_seconds`` pass, or ``stop``."""
        deadline = time.monotonic() + self.settings.poll_seconds
        client = self.client
        if client is None or not self.idle_capable or not self.settings.idle:
            stop.wait(self.settings.poll_seconds)
            return
        client.select_folder(self.settings.folders[0], readonly=True)
        client.idle()
        empty_wakes = 0
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                asked = time.monotonic()
                responses = client.idle_check(timeout=IDLE_CHECK_S)
                if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                    return
                # imapclient answers a closed connection with an empty list at once, forever:
                # woken early with nothing to read, three times in a row, is a lost connection.
                empty_wakes = (
                    empty_wakes + 1 if not responses and time.monotonic() - asked < IDLE_CHECK_S / 2 else 0
                )
                if empty_wakes >= 3:
                    raise ConnectionError(f"IMAP connection to {self.settings.host} closed during IDLE")
        finally:
            if empty_wakes < 3:
                client.idle_done()

    def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                client.logout()
            except Exception:  # already broken: the socket goes with it
                client.shutdown()


def imap_settings(config: dict[str, Any]) -> ImapSettings:
    """A connector table of a TOML file (docs/connectors.md) → settings; unknown keys are errors."""
    known = {*ImapSettings.__dataclass_fields__, "password_env", "password_file", "folder", "kind", "name"}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ConnectorError(f"imap connector: unknown setting(s) {', '.join(unknown)}")
    for required in ("host", "user"):
        if not config.get(required):
            raise ConnectorError(f"imap connector: {required} is required")
    folders = config.get("folders") or ([config["folder"]] if config.get("folder") else ["INBOX"])
    file = config.get("password_file")
    settings = ImapSettings(
        host=str(config["host"]),
        user=str(config["user"]),
        secret=Secret(config.get("password_env"), Path(file).expanduser() if file else None),
        folders=tuple(str(f) for f in folders),
    )
    overrides = {
        k: config[k]
        for k in ("port", "tls", "starttls", "xoauth2", "keep_subject", "poll_seconds", "timeout_s", "idle")
        if k in config
    }
    return replace(settings, **overrides)
