"""Settings from the environment, read in one place.

Every variable has a default that runs the embedded stack on one machine; a wrong value
raises :class:`ConfigError` naming the variable and what it expects.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

# One raw topic for every source, keyed by the account the event routes to: each account's events
# then reach the scorer in the order they were produced (see docs/design.md, "One raw topic").
TOPIC_RAW = "raw"
TOPIC_INTERACTIONS = "interactions"
TOPIC_SCORES = "scores"
TOPIC_ALERTS = "alerts"
TOPIC_DEADLETTER = "deadletter"
ALL_TOPICS = (TOPIC_RAW, TOPIC_INTERACTIONS, TOPIC_SCORES, TOPIC_ALERTS, TOPIC_DEADLETTER)


N = TypeVar("N", int, float)


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the variable and the fix."""


def _number(env: Mapping[str, str], name: str, default: N, minimum: N) -> N:
    """A whole number or a number (the type of ``default``) of at least ``minimum``."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    kind = type(default)
    expected = f"expected {'a whole number' if kind is int else 'a number'} >= {minimum}"
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: {expected}") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r}: {expected}")
    return value


def _bootstrap(env: Mapping[str, str]) -> str | None:
    raw = env.get("RAPPORT_KAFKA_BOOTSTRAP", "").strip()
    if not raw:
        return None
    for server in raw.split(","):
        host, sep, port = server.strip().removeprefix("kafka://").rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError(
                f"RAPPORT_KAFKA_BOOTSTRAP={raw!r}: expected host:port[,host:port...], "
                "e.g. localhost:9092; unset it to use the embedded broker"
            )
    return ",".join(s.strip().removeprefix("kafka://") for s in raw.split(","))


_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://\S+")


def credentials(url: str) -> tuple[str, str | None, str | None]:
    """``url`` without its user and password, the user, and the password. The password may hold
    ``@``, ``/`` or ``:`` unencoded (users paste them so): the last ``@`` ends it."""
    scheme, _, rest = url.partition("://")
    at = rest.rfind("@")
    if at < 0:
        return url, None, None
    user, colon, password = rest[:at].partition(":")
    return f"{scheme}://{rest[at + 1 :]}", user, password if colon else None


def _without_password(match: re.Match[str]) -> str:
    url = match.group(0)
    bare, user, password = credentials(url)
    if password is None:
        return url
    scheme, _, rest = bare.partition("://")
    return f"{scheme}://{user}:***@{rest}"


# Credentials in a query string (``?password=…``, ``&token=…``): the value up to the next ``&``.
_QUERY_SECRET = re.compile(
    r"([?&](?:password|passwd|pass|pwd|secret|token|api_key)=)[^&\s'\"]+", re.IGNORECASE
)
# Passwords of the URLs this process was configured with, replaced wherever they appear: a
# password with a space or a tab ends the URL pattern early, and free text cannot say where such a
# password stops, but the configured value itself is known.
_KNOWN_SECRETS: set[str] = set()
MIN_KNOWN_SECRET = 3  # shorter values would blank ordinary text


def remember_secrets(url: str) -> None:
    """Redact ``url``'s password (and query-string credentials) by value from now on."""
    _, _, password = credentials(url)
    values = [password or "", *(m.group(0).partition("=")[2] for m in _QUERY_SECRET.finditer(url))]
    _KNOWN_SECRETS.update(v for v in values if len(v) >= MIN_KNOWN_SECRET)


def redacted(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``: the one function for
    every URL (or message holding one) that is printed or logged. Configured passwords go by
    value first (longest first, so one that holds another goes whole), then every URL's userinfo
    password and every query-string credential."""
    for secret in sorted(_KNOWN_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    return _QUERY_SECRET.sub(r"\1***", _URL.sub(_without_password, text))


class _RedactedRecord(logging.LogRecord):
    """A log record whose message and traceback have no URL passwords."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.exc_info and not self.exc_text:
            self.exc_text = redacted(logging.Formatter().formatException(self.exc_info))

    def getMessage(self) -> str:
        return redacted(super().getMessage())


def _redacted_excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    sys.stderr.write(redacted("".join(traceback.format_exception(kind, value, tb))))


def redact_logs() -> None:
    """From now on, every log record and uncaught traceback of this process is redacted (worker
    logs carry the warehouse URL in connection errors)."""
    logging.setLogRecordFactory(_RedactedRecord)
    sys.excepthook = _redacted_excepthook


def _warehouse_url(env: Mapping[str, str], home: Path) -> str:
    raw = env.get("RAPPORT_WAREHOUSE_URL", "").strip()
    if not raw:
        return f"chdb://{home / 'warehouse'}"
    if raw.startswith(("chdb://", "http://", "https://")) and len(raw.split("://", 1)[1]) > 0:
        remember_secrets(raw)
        return raw
    raise ConfigError(
        f"RAPPORT_WAREHOUSE_URL={redacted(raw)!r}: expected chdb:///path/to/dir (embedded ClickHouse) "
        "or http(s)://user:password@host:8123 (ClickHouse server)"
    )


def _domains(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("RAPPORT_SELLER_DOMAINS", "")
    domains = tuple(d.strip().lower().lstrip("@") for d in raw.split(",") if d.strip())
    for domain in domains:
        if "." not in domain or " " in domain or "@" in domain:
            raise ConfigError(
                f"RAPPORT_SELLER_DOMAINS={raw!r}: expected comma-separated domains "
                "such as example.com,example.co.uk"
            )
    return domains


def home_from_env(env: Mapping[str, str]) -> Path:
    """``RAPPORT_HOME``, by default ``./.rapport``."""
    return Path(env.get("RAPPORT_HOME", "").strip() or ".rapport").expanduser().resolve()


def _broker_storage(env: Mapping[str, str]) -> str:
    raw = env.get("RAPPORT_BROKER_STORAGE", "").strip().lower() or "durable"
    if raw not in ("durable", "memory"):
        raise ConfigError(
            f"RAPPORT_BROKER_STORAGE={raw!r}: expected durable (keeps topics under RAPPORT_HOME) "
            "or memory (forgets them when the broker stops)"
        )
    return raw


@dataclass(frozen=True)
class Settings:
    """Everything the pipeline needs to know about where it runs."""

    home: Path
    kafka_bootstrap: str | None
    warehouse_url: str
    seller_domains: tuple[str, ...] = ()
    partitions: int = 4
    broker_bin: str | None = None
    broker_storage: str = "durable"  # embedded broker: "durable" (broker-data/) or "memory"
    sink_batch_size: int = 2000
    sink_batch_seconds: float = 0.5
    resolve_batch_seconds: float = 0.2
    fetch_wait_ms: int = 100
    allowed_lateness_s: float = 86400.0
    broker_session_timeout_s: float = 10.0
    broker_rebalance_timeout_s: float = 6.0
    app_id: str = "rapport"
    scoring_profile: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        env = os.environ if env is None else env
        home = home_from_env(env)
        embedded = not env.get("RAPPORT_KAFKA_BOOTSTRAP", "").strip()
        return cls(
            home=home,
            kafka_bootstrap=_bootstrap(env),
            warehouse_url=_warehouse_url(env, home),
            seller_domains=_domains(env),
            partitions=_number(env, "RAPPORT_PARTITIONS", 4, 1),
            broker_bin=env.get("RAPPORT_BROKER_BIN", "").strip() or None,
            broker_storage=_broker_storage(env),
            sink_batch_size=_number(env, "RAPPORT_SINK_BATCH_SIZE", 2000, 1),
            sink_batch_seconds=_number(env, "RAPPORT_SINK_BATCH_SECONDS", 0.5, 0.01),
            resolve_batch_seconds=_number(env, "RAPPORT_RESOLVE_BATCH_SECONDS", 0.2, 0.01),
            fetch_wait_ms=int(_number(env, "RAPPORT_FETCH_WAIT_MS", 100, 10)),
            allowed_lateness_s=_number(env, "RAPPORT_ALLOWED_LATENESS_S", 86400.0, 0.0),
            # Embedded: a fresh single broker, so short timeouts make the first group join take
            # seconds instead of half a minute. A real cluster keeps faust's safer defaults.
            broker_session_timeout_s=_number(
                env, "RAPPORT_BROKER_SESSION_TIMEOUT_S", 10.0 if embedded else 60.0, 1.0
            ),
            broker_rebalance_timeout_s=_number(
                env, "RAPPORT_BROKER_REBALANCE_TIMEOUT_S", 6.0 if embedded else 60.0, 1.0
            ),
            app_id=env.get("RAPPORT_APP_ID", "").strip() or "rapport",
            scoring_profile=Path(p).expanduser().resolve()
            if (p := env.get("RAPPORT_SCORING_PROFILE", "").strip())
            else None,
        )

    def with_seller_domains(self, domains: tuple[str, ...] | list[str]) -> Settings:
        merged = tuple(dict.fromkeys([*self.seller_domains, *(d.lower() for d in domains)]))
        return replace(self, seller_domains=merged)

    @property
    def state_dir(self) -> Path:
        """Faust's RocksDB tables live here."""
        return self.home / "state"

    @property
    def written_dir(self) -> Path:
        """The distinct keys each writer wrote per input table (streams.sinks.written)."""
        return self.home / "written"

    @property
    def broker_data_dir(self) -> Path:
        """The durable embedded broker's topics, offsets and changelogs."""
        return self.home / "broker-data"

    @property
    def bootstrap_file(self) -> Path:
        """``rapport up`` writes the running broker's address here for other commands."""
        return self.home / "bootstrap"

    @property
    def seller_domains_file(self) -> Path:
        """The seller domains the workers of a running ``rapport up`` use."""
        return self.home / "seller-domains"

    @property
    def status_file(self) -> Path:
        """The worker's progress after every written batch (the warehouse may be locked)."""
        return self.home / "worker-status.json"

    def as_env(self) -> dict[str, str]:
        """The environment a worker subprocess needs to see these same settings."""
        env = {
            "RAPPORT_HOME": str(self.home),
            "RAPPORT_WAREHOUSE_URL": self.warehouse_url,
            "RAPPORT_SELLER_DOMAINS": ",".join(self.seller_domains),
            "RAPPORT_PARTITIONS": str(self.partitions),
            "RAPPORT_SINK_BATCH_SIZE": str(self.sink_batch_size),
            "RAPPORT_SINK_BATCH_SECONDS": str(self.sink_batch_seconds),
            "RAPPORT_RESOLVE_BATCH_SECONDS": str(self.resolve_batch_seconds),
            "RAPPORT_FETCH_WAIT_MS": str(self.fetch_wait_ms),
            "RAPPORT_ALLOWED_LATENESS_S": str(self.allowed_lateness_s),
            "RAPPORT_BROKER_SESSION_TIMEOUT_S": str(self.broker_session_timeout_s),
            "RAPPORT_BROKER_REBALANCE_TIMEOUT_S": str(self.broker_rebalance_timeout_s),
            "RAPPORT_APP_ID": self.app_id,
            "RAPPORT_BROKER_STORAGE": self.broker_storage,
        }
        if self.kafka_bootstrap:
            env["RAPPORT_KAFKA_BOOTSTRAP"] = self.kafka_bootstrap
        if self.scoring_profile:
            env["RAPPORT_SCORING_PROFILE"] = str(self.scoring_profile)
        return env
