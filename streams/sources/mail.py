"""Email files in: maildir-style folders, mbox files, single .eml files, and JSON exports of the
Gmail API (``format=metadata``) and Microsoft Graph messages → ``raw_email/1``.

Only headers are parsed (``BytesHeaderParser``): bodies never leave this module, and never reach
a topic or the warehouse. Subjects are kept only as a hash (for thread fallback) unless subject
privacy is off. A file that cannot be used becomes a :class:`Rejection` with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import format_datetime, getaddresses, parsedate_to_datetime
from pathlib import Path
from typing import Any

from streams.contracts import (
    MAX_SIZE_BYTES,
    ContractError,
    bounded,
    format_time,
    make,
    parse_time,
    without_controls,
)
from streams.identity.people import name_key
from streams.sources.dataset import (
    Rejection,
    SourceRecord,
    bounded_lines,
    json_objects,
    read_whole,
    reason_of,
)
from streams.sources.redact import keyed_hash, mail_headers

SOURCE = "mail"
EARLIEST = datetime(1980, 1, 1, tzinfo=UTC)
_PARSER = BytesHeaderParser(policy=compat32)
# Reply and forward prefixes: English, German (AW, WG), Scandinavian (SV, VS), with Re[2]: counts.
_REPLY_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|wg|sv|vs)\s*(\[\d+\])?\s*:\s*)+")


def normalised_subject(subject: str) -> str:
    """Subject without reply/forward prefixes and extra spaces, lower-cased (thread fallback)."""
    return _REPLY_PREFIX.sub("", " ".join(subject.split()).lower()).strip()


def subject_hash(subject: str) -> str | None:
    """What is kept of a subject by default: a keyed hash of its normalised form (``None`` if
    empty; :func:`streams.sources.redact.keyed_hash`)."""
    normalised = normalised_subject(subject)
    return keyed_hash(normalised) if normalised else None


def _addresses(message: Message, *headers: str) -> list[str]:
    values = [str(v) for h in headers for v in (message.get_all(h) or [])]
    found = []
    for _name, address in getaddresses(values):
        address = without_controls(address).strip().strip("<>").strip()
        if address.count("@") == 1 and " " not in address:
            found.append(address)
    return found


MAX_ID = 512  # the contract's limit for a Message-ID


def _ids(value: str | None) -> list[str]:
    """The ``<ids>`` of a header; one longer than the contract allows is dropped, not the message."""
    return [i for i in re.findall(r"<[^<>\s]+>", without_controls(value or "")) if len(i) <= MAX_ID]


_YEAR = re.compile(r"\b\d{1,2}\s+[A-Za-z]{3,}\s+(\d+)\b")


def _written_year_differs(date_header: str, sent: datetime) -> bool:
    """The stdlib reads any short year as a two-digit one and so turns ``0001``, ``001`` and ``1``
    into 2001. RFC 5322 (4.3, obs-year) says: two digits are 1950–2049, three digits are 1900
    plus them, one digit is no year; four or more must be the year parsed."""
    match = _YEAR.search(date_header)
    if not match:
        return False
    written = match.group(1)
    if len(written) == 1:
        return True
    if len(written) == 3:
        return 1900 + int(written) != sent.year
    return len(written) >= 4 and int(written) != sent.year


def parse_message(
    raw: bytes,
    origin: str,
    keep_subject: bool = False,
    now: datetime | None = None,
    size: int | None = None,
) -> SourceRecord | Rejection:
    """One RFC 5322 message (bytes; or only its header block, with the whole message's ``size``)
    → a validated ``raw_email/1`` record, or a rejection."""
    try:
        message = _PARSER.parsebytes(raw)
    except Exception as exc:  # the stdlib parser raises little, but input is hostile
        return Rejection(origin, f"unparseable message ({type(exc).__name__})", headers_only(raw))
    try:
        size = len(raw) if size is None else size
        return _record(message, size, origin, keep_subject, now or datetime.now(UTC))
    except ContractError as exc:
        return Rejection(origin, str(exc), headers_only(raw))


def _record(message: Message, size: int, origin: str, keep_subject: bool, now: datetime) -> SourceRecord:
    ids = _ids(str(message.get("Message-ID", "")))
    if not ids:
        raise ContractError("no Message-ID header")
    message_id = ids[0]
    senders = _addresses(message, "From")
    if not senders:
        raise ContractError(f"{message_id}: no usable From address")
    date_header = message.get("Date")
    try:
        sent = parsedate_to_datetime(str(date_header)) if date_header else None
    except (TypeError, ValueError, IndexError):
        sent = None
    if sent is None:
        raise ContractError(f"{message_id}: missing or unreadable Date header")
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    if not EARLIEST <= sent <= now.replace(year=now.year + 1) or _written_year_differs(
        str(date_header), sent
    ):
        raise ContractError(f"{message_id}: impossible date {sent.isoformat()}")
    subject = str(message.get("Subject", "") or "")
    references = _ids(str(message.get("References", "")))
    in_reply_to = next(iter(_ids(str(message.get("In-Reply-To", "")))), None)
    content_type = str(message.get("Content-Type", "")).lower()
    occurred_at = format_time(sent)
    payload = {
        "message_id": message_id,
        "from": senders[0],
        "to": _addresses(message, "To"),
        "cc": _addresses(message, "Cc"),
        "sent_at": occurred_at,
        "in_reply_to": in_reply_to,
        "references": references[:200],
        "thread_id": references[0] if references else None,
        "subject": subject[:1000] if keep_subject else None,
        "subject_hash": subject_hash(subject),
        "size_bytes": size,
        "has_attachments": "multipart/mixed" in content_type,
        "list_unsubscribe": message.get("List-Unsubscribe") is not None,
        "auto_submitted": _header_text(message, "Auto-Submitted"),
        "precedence": _header_text(message, "Precedence"),
        **sender_signals(message, senders[0]),
    }
    envelope = make("raw_email/1", message_id, SOURCE, occurred_at, payload)
    return SourceRecord("email", envelope, envelope.to_bytes())


LIST_HEADERS = ("List-Id", "List-Post", "List-Help", "Mailing-List", "X-Mailing-List")


def _display_name(message: Message) -> str:
    """The sender's display name: From's, else Enron's ``X-From`` (text before its ``<``)."""
    name = getaddresses([str(v) for v in message.get_all("From") or []])
    if name and name[0][0].strip():
        return name[0][0]
    return str(message.get("X-From") or "").split("<", 1)[0].strip().strip('"').strip()


def sender_signals(message: Message, sender: str) -> dict[str, Any]:
    """Header-level identity signals, each only when present (no display name is kept, only its key).

    ``list_id``: a mailing-list header (List-Id, List-Post, Mailing-List, …); ``envelope_sender``:
    the Sender or Return-Path address when it differs from From (a list manager's ``owner-…``);
    ``from_name_key``: :func:`streams.identity.people.name_key` of the sender's display name.
    """
    signals: dict[str, Any] = {}
    if any(message.get(header) is not None for header in LIST_HEADERS):
        signals["list_id"] = True
    for header in ("Sender", "Return-Path"):
        found = _addresses(message, header)
        if found and found[0].lower() != sender.lower():
            signals["envelope_sender"] = found[0]
            break
    key = name_key(_display_name(message))
    if key:
        signals["from_name_key"] = key
    return signals


def _header_text(message: Message, name: str) -> str | None:
    value = message.get(name)
    return without_controls(str(value))[:100] or None if value else None


def headers_only(raw: bytes) -> bytes:
    """What a rejection keeps of a message: its structural headers, never the body or free text
    (:func:`streams.sources.redact.mail_headers`)."""
    return mail_headers(raw)


_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 2.2: printable ASCII but ':'


def _header_line(name: str, value: Any) -> str:
    """One header of a JSON export as a line. A name that is not a header name (a newline in it,
    a colon) rejects the message; a value keeps only its first line, without control characters,
    so a CR/LF inside it cannot smuggle in another header (a ``Cc:``)."""
    if not _HEADER_NAME.match(name):
        raise ContractError("a header name with characters a header name cannot have")
    first_line = re.split(r"[\r\n]", str(value), maxsplit=1)[0]
    return f"{name}: {' '.join(without_controls(first_line.replace(chr(9), ' ')).split())}"


def _header_block(headers: Iterable[tuple[str, str]]) -> bytes:
    lines = [_header_line(str(name), value) for name, value in headers if name and value is not None]
    return ("\n".join(lines) + "\n\n").encode("utf-8", "replace")


def _graph_address(value: Any) -> str:
    address = (value or {}).get("emailAddress") or {}
    return str(address.get("address") or "")


def json_message_headers(message: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """A Gmail metadata or Graph message → a header block and the fields JSON adds."""
    if "payload" in message:  # Gmail API users.messages.get(format=metadata)
        headers = [(h.get("name", ""), h.get("value", "")) for h in message["payload"].get("headers", [])]
        size = bounded(message.get("sizeEstimate") or 0, "sizeEstimate", 0, MAX_SIZE_BYTES)
        extra = {"size_bytes": int(size), "thread_id": message.get("threadId")}
        return _header_block(headers), extra
    if "internetMessageId" in message or "sentDateTime" in message:  # Microsoft Graph message
        sent = message.get("sentDateTime") or message.get("receivedDateTime")
        headers = [
            ("Message-ID", message.get("internetMessageId")),
            ("Date", format_datetime(parse_time(sent)) if sent else None),
            ("From", _graph_address(message.get("from") or message.get("sender"))),
            ("To", ", ".join(_graph_address(r) for r in message.get("toRecipients") or [])),
            ("Cc", ", ".join(_graph_address(r) for r in message.get("ccRecipients") or [])),
            ("Subject", message.get("subject")),
        ]
        headers += [
            (h.get("name", ""), h.get("value", "")) for h in message.get("internetMessageHeaders") or []
        ]
        extra = {
            "has_attachments": bool(message.get("hasAttachments")),
            "thread_id": message.get("conversationId"),
        }
        return _header_block(headers), extra
    raise ContractError("JSON message is neither a Gmail API message (payload.headers) nor a Graph message")


def parse_json_messages(
    raw: bytes, origin: str, keep_subject: bool = False
) -> list[SourceRecord | Rejection]:
    """A JSON file of one message, a list of them, or ``{"messages"|"value": [...]}``."""
    objects = json_objects(raw, origin, ("messages", "value"))
    if isinstance(objects, Rejection):
        return [objects]
    results: list[SourceRecord | Rejection] = []
    for where, message in objects:
        try:
            if not isinstance(message, dict):
                raise ContractError("expected a JSON object per message")
            head, extra = json_message_headers(message)
        except (ContractError, ValueError, TypeError, AttributeError) as exc:
            results.append(Rejection(where, reason_of(exc, "unreadable JSON message"), b""))
            continue
        parsed = parse_message(head, where, keep_subject)
        if isinstance(parsed, SourceRecord):
            payload = dict(parsed.envelope.payload)
            payload.update({k: v for k, v in extra.items() if v not in (None, 0, "")})
            try:
                envelope = make(
                    "raw_email/1", parsed.envelope.event_id, SOURCE, parsed.envelope.occurred_at, payload
                )
            except ContractError as exc:
                results.append(Rejection(where, str(exc), headers_only(head)))
                continue
            parsed = SourceRecord("email", envelope, envelope.to_bytes())
        results.append(parsed)
    return results


def _is_mbox(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(5) == b"From "


MAX_HEAD = 1024 * 1024  # bytes of a message's header block read; the body is never read
_END_OF_HEAD = re.compile(rb"\n\r?\n")


def message_head(path: Path) -> tuple[bytes, int]:
    """The header block of a message file (at most :data:`MAX_HEAD` bytes) and the file's size:
    a 200 MB message costs 1 MB of memory, not the 2.2 GB reading and parsing it whole took."""
    head = b""
    with path.open("rb") as handle:
        while len(head) < MAX_HEAD and (chunk := handle.read(64 * 1024)):
            head += chunk
            if (end := _END_OF_HEAD.search(head)) is not None:
                return head[: end.end()], path.stat().st_size
    return head[:MAX_HEAD], path.stat().st_size


def mbox_heads(path: Path) -> Iterator[tuple[bytes, int]]:
    """Each message of an mbox file as its header block and its size, read line by line with at
    most :data:`MAX_HEAD` bytes of a line in memory (the stdlib's mailbox reads every message,
    and its longest line, whole)."""
    head: list[bytes] = []
    in_head, start, started = False, 0, False
    with path.open("rb") as handle:
        for line in bounded_lines(handle, MAX_HEAD):
            end = handle.tell()
            if line is not None and line.startswith(b"From "):
                if started:
                    yield b"".join(head), end - len(line) - start
                head, in_head, start, started = [], True, end, True
                continue
            if in_head:
                if line is None or not line.strip() or sum(map(len, head)) > MAX_HEAD:
                    in_head = False
                else:
                    head.append(line)
        if started:
            yield b"".join(head), handle.tell() - start


def read_mail(paths: Iterable[Path], keep_subject: bool = False) -> Iterator[SourceRecord | Rejection]:
    """Every message under the given folders and files, in a stable (sorted) order."""
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            files = [path]
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
        for file in files:
            if file.suffix.lower() == ".json":
                raw = read_whole(file, "JSON export")
                if isinstance(raw, Rejection):
                    yield raw
                else:
                    yield from parse_json_messages(raw, str(file), keep_subject)
            elif _is_mbox(file):
                for n, (head, size) in enumerate(mbox_heads(file)):
                    yield parse_message(head, f"{file}#{n}", keep_subject, size=size)
            else:
                head, size = message_head(file)
                yield parse_message(head, str(file), keep_subject, size=size)
