"""Real servers for the connector tests, each started on 127.0.0.1 with a throwaway config:
Dovecot (IMAP), Radicale (CalDAV), aiosmtpd (SMTP) and a stdlib HTTP receiver (webhooks)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from streams.runtime.broker import free_port

IMAP_USER = "seller@rapport.test"
IMAP_PASSWORD = "imap-secret-1"


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None, what: str, log: Path | None) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.1)
    detail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port}\n{detail}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@dataclass
class Dovecot:
    port: int
    folder: Path
    process: subprocess.Popen[bytes]
    user: str = IMAP_USER
    password: str = IMAP_PASSWORD

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary(), "-F", "-c", str(self.folder / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.port, self.process, "dovecot", self.folder / "dovecot.log")

    def stop(self) -> None:
        stop_process(self.process)

    @staticmethod
    def binary() -> str:
        found = shutil.which("dovecot") or (
            "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
        )
        if found is None:
            pytest.fail("dovecot is not installed: apt-get install -y dovecot-imapd (.ci/run does)")
        return found


DOVECOT_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
mailbox_idle_check_interval = 1 secs
first_valid_uid = 1
{users}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
}}
"""


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A Dovecot IMAP server with one user and maildir storage in a fresh folder."""
    Dovecot.binary()
    # Dovecot never gives mail to uid 0: as root, the mail belongs to Dovecot's own user, and the
    # folder must be reachable by it (pytest's tmp_path is private to root).
    root = Path(tempfile.mkdtemp(prefix="rapport-dovecot-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("dovecot")
        uid, gid, users = owner.pw_uid, owner.pw_gid, ""
    else:
        me = pwd.getpwuid(os.geteuid())
        uid, gid = me.pw_uid, me.pw_gid
        users = f"default_login_user = {me.pw_name}\ndefault_internal_user = {me.pw_name}"
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir()
    (root / "users").write_text(f"{IMAP_USER}:{{PLAIN}}{IMAP_PASSWORD}\n")
    port = free_port()
    config = root / "dovecot.conf"
    config.write_text(DOVECOT_CONF.format(root=root, uid=uid, gid=gid, port=port, users=users))
    os.chmod(root, 0o755)
    for sub in ("mail", "home"):
        os.chown(root / sub, uid, gid)
    server = Dovecot(port, root, subprocess.Popen(["true"]))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Radicale:
    url: str
    folder: Path


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[Radicale]:
    """A Radicale CalDAV server, no authentication (any user and password), storage in the test's
    folder."""
    port = free_port()
    storage = tmp_path / "radicale"
    log = tmp_path / "radicale.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "radicale",
                "--server-hosts",
                f"127.0.0.1:{port}",
                "--storage-filesystem-folder",
                str(storage),
                "--auth-type",
                "none",  # any user name, any password: the user's own collections
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "RADICALE_CONFIG": ""},
        )
    try:
        wait_for_port(port, process, "radicale", log)
        yield Radicale(f"http://127.0.0.1:{port}/", storage)
    finally:
        stop_process(process)


@dataclass
class Receiver:
    """What the local HTTP receiver was sent: (path, body) per request, in order."""

    url: str
    requests: list[tuple[str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    failures: int = 0  # answer this many POSTs with 503 (and record none of them) first

    def bodies(self, path: str) -> list[bytes]:
        with self.lock:
            return [body for p, body in self.requests if p == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A stdlib HTTP server in a thread that records every POST and answers 200."""
    received = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with received.lock:
                failing = received.failures > 0
                received.failures -= failing
                if not failing:
                    received.requests.append((self.path, body))
            self.send_response(503 if failing else 200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    received.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
