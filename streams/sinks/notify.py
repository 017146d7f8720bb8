"""Alerts reach people: the ``alerts`` topic → chat webhooks and per-owner email digests.

Each alert version (raised, then resolved) is matched against the routes of a TOML config
(``docs/connectors.md``, "Notifications"): by owner, team, severity and kind. Chat routes post
one message per alert version — Slack-compatible incoming webhooks (``text`` + ``blocks``) and
Microsoft Teams workflow webhooks (an Adaptive Card) — with the account, the reason, the
evidence (the ``rapport explain account`` command line, and a Grafana link when configured) and
the owner. Email routes send each recipient at most one digest per period over SMTP (STARTTLS
and login from the environment), listing what was raised and what resolved. Quiet hours hold
deliveries (nothing is dropped) until they end.

Every delivery goes through :class:`streams.sinks.ledger.DeliveryLedger`, keyed by route, alert
id and version, so a restart (or a SIGKILL) neither repeats nor loses one; the ledger's
docstring explains the order of its writes.

The alerts topic is read by partition assignment from the ledger's offsets (no consumer group);
the first start reads the topic from its beginning (``start = "end"`` skips the history).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import smtplib
import ssl
import threading
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as clock
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from streams.config import TOPIC_ALERTS, ConfigError
from streams.sinks.ledger import DeliveryLedger
from streams.sources.connector import ConnectorStatus

log = logging.getLogger(__name__)

SEVERITY_ORDER = ("info", "low", "medium", "warning", "high", "critical")
RETRY_FIRST_S = 2.0
RETRY_MAX_S = 300.0


class DeliveryError(RuntimeError):
    """A webhook or mail server refused or could not be reached; the delivery is retried."""


@dataclass(frozen=True)
class Alert:
    """What the notifier needs of one alert version."""

    alert_id: str
    account_id: str
    kind: str
    severity: str
    status: str  # "raised" or "resolved"
    reason: str
    evidence: dict[str, Any]
    raised_at: str
    ended_at: str | None
    version: int
    owner: str | None

    @property
    def key(self) -> str:
        return f"{self.alert_id}|{self.version}"


def decode_alert(value: bytes) -> Alert:
    """An ``alerts`` topic message (an ``alert/1`` envelope) → :class:`Alert`.

    The one place that knows the payload: the fields of the warehouse ``alerts`` rows
    (streams/scoring/alerts.py) — ``alert_id``, ``account_id``, ``kind``, ``severity``, ``status``
    (``open`` or ``resolved``), ``reason``, ``explanation`` (the evidence), ``raised_at``,
    ``ended_at``, ``version`` (1 raised, 2 resolved) and, when the scorer knows it, ``owner``.
    Raises :class:`ValueError` with the reason for anything else.
    """
    document = orjson.loads(value)
    if not isinstance(document, dict):
        raise ValueError("expected a JSON object")
    payload = document.get("payload") if "schema" in document else document
    if not isinstance(payload, dict):
        raise ValueError("envelope without a payload object")
    missing = [k for k in ("alert_id", "account_id", "kind", "severity", "reason") if not payload.get(k)]
    if missing:
        raise ValueError(f"alert without {', '.join(missing)}")
    evidence = payload.get("explanation") or payload.get("evidence") or {}
    if isinstance(evidence, str):
        evidence = orjson.loads(evidence) if evidence.startswith("{") else {"note": evidence}
    version = int(payload.get("version") or 1)
    resolved = str(payload.get("status") or "").lower() in ("resolved", "closed") or version >= 2
    ended = payload.get("ended_at")
    return Alert(
        alert_id=str(payload["alert_id"]),
        account_id=str(payload["account_id"]),
        kind=str(payload["kind"]),
        severity=str(payload["severity"]).lower(),
        status="resolved" if resolved else "raised",
        reason=str(payload["reason"])[:2000],
        evidence=evidence if isinstance(evidence, dict) else {},
        raised_at=str(payload.get("raised_at") or document.get("occurred_at") or ""),
        ended_at=str(ended) if resolved and ended else None,
        version=version,
        owner=str(payload["owner"]) if payload.get("owner") else None,
    )


# --- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class QuietHours:
    start: clock
    end: clock
    zone: ZoneInfo

    def active(self, now: datetime) -> bool:
        local = now.astimezone(self.zone).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # across midnight


@dataclass(frozen=True)
class Route:
    name: str
    kind: str  # slack, teams, email
    url: str | None = None
    to: tuple[str, ...] = ("owner",)  # email: addresses, or "owner"
    severities: frozenset[str] | None = None
    min_severity: str | None = None
    owners: frozenset[str] | None = None
    teams: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    quiet: bool = True  # held during quiet hours
    min_interval_s: float = 1.0  # Slack allows about one message per second per webhook

    def matches(self, alert: Alert, owner: str | None, team: str | None) -> bool:
        if self.severities is not None and alert.severity not in self.severities:
            return False
        if self.min_severity is not None and _rank(alert.severity) < _rank(self.min_severity):
            return False
        if self.owners is not None and (owner or "") not in self.owners:
            return False
        if self.teams is not None and (team or "") not in self.teams:
            return False
        return self.kinds is None or alert.kind in self.kinds


def _rank(severity: str) -> int:
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else 0


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int = 587
    starttls: bool = True
    sender: str = "rapport@localhost"
    user_env: str = "RAPPORT_SMTP_USER"
    password_env: str = "RAPPORT_SMTP_PASSWORD"
    ca_file: str | None = None  # a private CA for an internal relay; default: the system's


@dataclass(frozen=True)
class NotifyConfig:
    routes: tuple[Route, ...]
    owners: dict[str, str] = field(default_factory=dict)  # account id -> owner email
    teams: dict[str, str] = field(default_factory=dict)  # owner email -> team
    quiet_hours: QuietHours | None = None
    digest_period_s: float = 3600.0
    grafana_url: str | None = None  # with {account_id}
    smtp: Smtp | None = None
    start: str = "beginning"
    topic: str = TOPIC_ALERTS
    poll_s: float = 0.5


def _set(value: Any) -> frozenset[str] | None:
    return frozenset(str(v) for v in value) if value is not None else None


def _clock(value: str, where: str) -> clock:
    try:
        hours, minutes = str(value).split(":")
        return clock(int(hours), int(minutes))
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not a time like 20:00") from None


def _url(table: dict[str, Any], where: str) -> str:
    url = table.get("url") or os.environ.get(str(table.get("url_env") or ""), "")
    if not str(url).startswith(("http://", "https://")):
        raise ConfigError(f"{where}: needs url (or url_env naming a variable) with an http(s) webhook URL")
    return str(url)


def load_notify_config(path: Path) -> NotifyConfig:
    """The notifier's TOML file → :class:`NotifyConfig`; every mistake names the setting."""
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the notifier config ({exc})") from None
    notify = document.get("notify", {})
    routes = []
    for n, table in enumerate(document.get("routes", [])):
        name = str(table.get("name") or f"route-{n + 1}")
        where = f"{path}: route {name}"
        kind = table.get("kind")
        if kind not in ("slack", "teams", "email"):
            raise ConfigError(f"{where}: kind must be slack, teams or email")
        severity = table.get("min_severity")
        if severity is not None and severity not in SEVERITY_ORDER:
            raise ConfigError(f"{where}: min_severity must be one of {', '.join(SEVERITY_ORDER)}")
        routes.append(
            Route(
                name=name,
                kind=kind,
                url=_url(table, where) if kind != "email" else None,
                to=tuple(table.get("to") or ["owner"]),
                severities=_set(table.get("severities")),
                min_severity=severity,
                owners=_set(table.get("owners")),
                teams=_set(table.get("teams")),
                kinds=_set(table.get("kinds")),
                quiet=bool(table.get("quiet_hours", True)),
                min_interval_s=float(table.get("min_interval_s", 1.0 if kind != "email" else 0.0)),
            )
        )
    if not routes:
        raise ConfigError(f"{path}: no [[routes]]: say where alerts go (slack, teams or email)")
    if len({r.name for r in routes}) != len(routes):
        raise ConfigError(f"{path}: route names repeat; name each [[routes]] differently")
    quiet = None
    if "quiet_hours" in document:
        q = document["quiet_hours"]
        try:
            zone = ZoneInfo(str(q.get("timezone", "UTC")))
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"{path}: quiet_hours.timezone {q.get('timezone')!r} is unknown") from None
        begins = _clock(q.get("start", ""), f"{path}: quiet_hours.start")
        quiet = QuietHours(begins, _clock(q.get("end", ""), f"{path}: quiet_hours.end"), zone)
    smtp = None
    if "smtp" in document:
        s = document["smtp"]
        if not s.get("host"):
            raise ConfigError(f"{path}: [smtp] needs host")
        smtp = Smtp(
            host=str(s["host"]),
            port=int(s.get("port", 587)),
            starttls=bool(s.get("starttls", True)),
            sender=str(s.get("from", "rapport@localhost")),
            user_env=str(s.get("user_env", "RAPPORT_SMTP_USER")),
            password_env=str(s.get("password_env", "RAPPORT_SMTP_PASSWORD")),
            ca_file=str(Path(s["ca_file"]).expanduser()) if s.get("ca_file") else None,
        )
    if any(r.kind == "email" for r in routes) and smtp is None:
        raise ConfigError(f"{path}: an email route needs an [smtp] section")
    start = str(notify.get("start", "beginning"))
    if start not in ("beginning", "end"):
        raise ConfigError(f"{path}: notify.start must be beginning or end")
    return NotifyConfig(
        routes=tuple(routes),
        owners={str(k): str(v) for k, v in document.get("owners", {}).items()},
        teams={str(k): str(v) for k, v in document.get("teams", {}).items()},
        quiet_hours=quiet,
        digest_period_s=float(notify.get("digest_minutes", 60)) * 60,
        grafana_url=notify.get("grafana_url"),
        smtp=smtp,
        start=start,
        topic=str(notify.get("topic", TOPIC_ALERTS)),
        poll_s=float(notify.get("poll_seconds", 0.5)),
    )


# --- messages ------------------------------------------------------------------------------------


def explain_command(alert: Alert) -> str:
    return f"rapport explain account {alert.account_id}"


def _headline(alert: Alert) -> str:
    verb = "resolved" if alert.status == "resolved" else f"{alert.severity} alert"
    return f"{alert.account_id}: {verb} — {alert.kind.replace('_', ' ')}"


def slack_message(alert: Alert, owner: str | None, grafana: str | None) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook payload: ``text`` (fallback) and ``blocks``."""
    details = (
        f"*Reason:* {alert.reason}\n*Owner:* {owner or 'unassigned'}\n*Evidence:* `{explain_command(alert)}`"
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _headline(alert)[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": details[:3000]}},
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"alert {alert.alert_id} v{alert.version}"}],
        },
    ]
    if grafana:
        button = {"type": "button", "text": {"type": "plain_text", "text": "Open in Grafana"}, "url": grafana}
        blocks.append({"type": "actions", "elements": [button]})
    return {"text": f"{_headline(alert)}: {alert.reason}"[:3000], "blocks": blocks}


def teams_message(alert: Alert, owner: str | None, grafana: str | None) -> dict[str, Any]:
    """A Microsoft Teams workflow-webhook payload: one Adaptive Card."""
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": _headline(alert),
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            },
            {"type": "TextBlock", "text": alert.reason, "wrap": True},
            {
                "type": "FactSet",
                "facts": [
                    {"title": "Account", "value": alert.account_id},
                    {"title": "Owner", "value": owner or "unassigned"},
                    {"title": "Severity", "value": alert.severity},
                    {"title": "Evidence", "value": explain_command(alert)},
                    {"title": "Alert", "value": f"{alert.alert_id} v{alert.version}"},
                ],
            },
        ],
    }
    if grafana:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open in Grafana", "url": grafana}]
    return {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
    }


def digest_message(
    digest_id: str, recipient: str, alerts: list[tuple[Alert, str | None]], config: NotifyConfig, smtp: Smtp
) -> EmailMessage:
    raised = [(a, o) for a, o in alerts if a.status == "raised"]
    resolved = [(a, o) for a, o in alerts if a.status == "resolved"]
    lines = [f"Rapport alerts: {len(raised)} new, {len(resolved)} resolved.", ""]
    for title, group in (("New", raised), ("Resolved", resolved)):
        if group:
            lines.append(f"{title}:")
            for alert, owner in group:
                link = grafana_link(config, alert)
                lines.append(f"- [{alert.severity}] {alert.account_id} ({alert.kind}): {alert.reason}")
                lines.append(f"  owner {owner or 'unassigned'}; evidence: {explain_command(alert)}")
                if link:
                    lines.append(f"  {link}")
            lines.append("")
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = recipient
    message["Subject"] = f"Rapport: {len(raised)} new and {len(resolved)} resolved alerts"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = f"<{digest_id}@rapport.digest>"  # the same when re-sent after a kill
    message.set_content("\n".join(lines))
    return message


def grafana_link(config: NotifyConfig, alert: Alert) -> str | None:
    return config.grafana_url.format(account_id=alert.account_id) if config.grafana_url else None


def post_json(url: str, body: dict[str, Any], timeout_s: float = 15.0) -> None:
    request = urllib.request.Request(
        url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            if not 200 <= response.status < 300:
                raise DeliveryError(f"webhook answered {response.status}")
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"webhook answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"webhook unreachable: {exc}") from None


def send_mail(smtp: Smtp, message: EmailMessage) -> None:
    user, password = os.environ.get(smtp.user_env, ""), os.environ.get(smtp.password_env, "")
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=30) as server:
            if smtp.starttls:
                server.starttls(context=ssl.create_default_context(cafile=smtp.ca_file))
            if user:
                server.login(user, password)
            server.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP {smtp.host}:{smtp.port}: {exc}") from None


# --- the notifier ----------------------------------------------------------------------------------


class Notifier:
    """Reads the alerts topic, queues each matching delivery in the ledger, delivers when due."""

    def __init__(self, config: NotifyConfig, home: Path, bootstrap: str, name: str = "notify") -> None:
        self.config = config
        self.bootstrap = bootstrap
        self.ledger = DeliveryLedger(home / "notify" / f"{name}.ledger.jsonl")
        self.status = ConnectorStatus(home, name, "notifier")
        self.next_at: dict[str, float] = {}  # route -> earliest next post (pacing, retry backoff)
        self.backoff: dict[str, float] = {}
        self.delivered: dict[str, int] = {}
        self.undecodable = 0

    def owner_of(self, alert: Alert) -> str | None:
        return alert.owner or self.config.owners.get(alert.account_id)

    def queue(self, value: bytes | None, origin: str) -> None:
        if value is None:
            return  # a tombstone: an alert ``rapport forget`` removed, or an end-offset refresh
        try:
            alert = decode_alert(value or b"")
        except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
            self.undecodable += 1
            self.status.errors += 1
            self.status.last_error = {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "message": f"{origin}: undecodable alert: {exc}",
            }
            log.warning("%s: undecodable alert: %s", origin, exc)
            return
        owner = self.owner_of(alert)
        team = self.config.teams.get(owner or "")
        for route in self.config.routes:
            key = f"{route.name}|{alert.key}"
            if key not in self.ledger.state.queued and route.matches(alert, owner, team):
                self.ledger.write("queued", key=key, route=route.name, alert=alert.__dict__)

    def quiet(self, route: Route, now: datetime) -> bool:
        return route.quiet and self.config.quiet_hours is not None and self.config.quiet_hours.active(now)

    def pending(self, route: Route) -> list[tuple[str, Alert]]:
        state = self.ledger.state
        skip = state.sent | (state.in_digest() if route.kind == "email" else set())
        return [
            (key, Alert(**entry["alert"]))
            for key, entry in state.queued.items()
            if entry["route"] == route.name and key not in skip
        ]

    def deliver_due(self) -> None:
        now = datetime.now(UTC)
        for route in self.config.routes:
            if self.quiet(route, now) or time.monotonic() < self.next_at.get(route.name, 0.0):
                continue
            try:
                if route.kind == "email":
                    self._finish_uncertain_digests()
                    self._digests(route)
                else:
                    self._chat(route)
                self.backoff.pop(route.name, None)
            except DeliveryError as exc:
                wait = min(self.backoff.get(route.name, RETRY_FIRST_S / 2) * 2, RETRY_MAX_S)
                self.backoff[route.name] = wait
                self.next_at[route.name] = time.monotonic() + wait
                self.status.failed(exc, wait)
                log.warning("route %s: %s; retrying in %.0f s", route.name, exc, wait)

    def _chat(self, route: Route) -> None:
        for key, alert in self.pending(route)[:1]:  # one per turn: pacing applies between posts
            owner = self.owner_of(alert)
            grafana = grafana_link(self.config, alert)
            body = (slack_message if route.kind == "slack" else teams_message)(alert, owner, grafana)
            self.ledger.write("sending", key=key)
            assert route.url is not None
            post_json(route.url, body)
            self.ledger.write("sent", key=key)
            self.delivered[route.name] = self.delivered.get(route.name, 0) + 1
            self.next_at[route.name] = time.monotonic() + route.min_interval_s

    def _recipients(self, route: Route, alert: Alert) -> list[str]:
        """A route's addresses, "owner" standing for the alert's owner (left out when unknown)."""
        owner = self.owner_of(alert)
        fixed = [to for to in route.to if to != "owner"]
        return [*fixed, owner] if owner is not None and "owner" in route.to else fixed

    def _digests(self, route: Route) -> None:
        smtp = self.config.smtp
        assert smtp is not None
        by_recipient: dict[str, list[tuple[str, Alert]]] = {}
        for key, alert in self.pending(route):
            for recipient in self._recipients(route, alert) or ["unassigned"]:
                by_recipient.setdefault(recipient, []).append((key, alert))
        for recipient, items in sorted(by_recipient.items()):
            if recipient == "unassigned":
                continue  # no owner and no fixed address: kept queued, shown in the status file
            last = self.ledger.state.last_digest.get(f"{route.name}|{recipient}", 0.0)
            if time.time() - last < self.config.digest_period_s:
                continue
            keys = [key for key, _ in items]
            digest_id = hashlib.sha1(f"{route.name}|{recipient}|{'|'.join(keys)}".encode()).hexdigest()[:24]
            self.ledger.write("digest", id=digest_id, to=f"{route.name}|{recipient}", keys=keys)
            self._send_digest(digest_id, recipient, [a for _, a in items], smtp)

    def _send_digest(self, digest_id: str, recipient: str, alerts: list[Alert], smtp: Smtp) -> None:
        message = digest_message(
            digest_id, recipient, [(a, self.owner_of(a)) for a in alerts], self.config, smtp
        )
        send_mail(smtp, message)
        self.ledger.write("digest_sent", id=digest_id)
        self.delivered["digests"] = self.delivered.get("digests", 0) + 1

    def _finish_uncertain_digests(self) -> None:
        """A digest written but not marked sent (a kill mid-send) goes again, same Message-ID."""
        smtp = self.config.smtp
        for digest_id, digest in list(self.ledger.state.digests.items()):
            if digest["done"] or smtp is None:
                continue
            recipient = digest["to"].split("|", 1)[1]
            alerts = [Alert(**self.ledger.state.queued[k]["alert"]) for k in digest["keys"]]
            self._send_digest(digest_id, recipient, alerts, smtp)

    def write_status(self, state: str) -> None:
        waiting = sum(len(self.pending(r)) for r in self.config.routes)
        self.status.lag = waiting
        self.status.last_sync = time.time()
        self.status.detail = {
            "delivered": dict(self.delivered),
            "waiting": waiting,
            "undecodable": self.undecodable,
            "quiet_hours": bool(
                self.config.quiet_hours and self.config.quiet_hours.active(datetime.now(UTC))
            ),
        }
        self.status.write(state)

    async def run(self, stop: threading.Event) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, client_id="rapport-notify"
        )
        await consumer.start()
        try:
            found = consumer.partitions_for_topic(self.config.topic) or set()
            partitions = [TopicPartition(self.config.topic, p) for p in sorted(found)]
            if not partitions:
                raise ConfigError(f"topic {self.config.topic!r} does not exist on {self.bootstrap}")
            consumer.assign(partitions)
            offsets = self.ledger.state.offsets
            for tp in partitions:
                at = offsets.get(f"{tp.topic}:{tp.partition}")
                if at is not None:
                    consumer.seek(tp, at)
                elif self.config.start == "end":
                    await consumer.seek_to_end(tp)
                else:
                    await consumer.seek_to_beginning(tp)
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=int(self.config.poll_s * 1000))
                moved = {}
                for tp, messages in batches.items():
                    for message in messages:
                        self.queue(message.value, f"{tp.topic}/{tp.partition}@{message.offset}")
                    if messages:
                        moved[f"{tp.topic}:{tp.partition}"] = messages[-1].offset + 1
                if moved:
                    self.ledger.write("offsets", offsets=moved)  # after the queued lines
                self.deliver_due()
                self.write_status("running")
        except Exception as exc:  # the reason goes to the status file, for `rapport status`
            self.status.failed(exc, None)
            raise
        finally:
            await consumer.stop()
            if self.status.state != "failed":
                self.write_status("stopped")
            self.ledger.close()


def run_notifier(config: NotifyConfig, home: Path, bootstrap: str, stop: threading.Event) -> None:
    asyncio.run(Notifier(config, home, bootstrap).run(stop))
