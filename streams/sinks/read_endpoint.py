"""Reads of an embedded (chDB) warehouse while a worker holds it: a ClickHouse HTTP endpoint.

chDB locks its folder to one process, and the worker holds it while ``rapport up`` runs. So the
worker serves the ClickHouse HTTP interface's read part on 127.0.0.1 (``/ping``, and a query in
the URL or the body; ``param_*`` bindings; the output format the query asks for), from its own
chDB connection to the same engine. It records ``pid port`` in ``<warehouse folder>.endpoint``;
:func:`live_url` finds it, and :func:`streams.sinks.warehouse.connect` then gives other
processes an HTTP client (clickhouse-connect, the same code as for a ClickHouse server) instead
of opening the locked folder. Rows a batch wrote are visible to the next query.

Inserts (a query in the URL and data in the body) are refused: writes go through the worker's
sink only. Why not let the `up` process hold the warehouse and have workers write to it: that
adds a hop on the write path of every batch; reads are rare and small, writes are the hot path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

TRAILING_FORMAT = re.compile(rb"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
# what a reader sends: queries, and the no-op CREATE … IF NOT EXISTS of an up-to-date migrate
READ_ONLY = re.compile(
    rb"^\s*(\(|SELECT|WITH|SHOW|DESC|DESCRIBE|EXISTS|EXPLAIN|CREATE\s+(DATABASE|TABLE)\s+IF\s+NOT\s+EXISTS)\b",
    re.IGNORECASE,
)


def endpoint_file(folder: Path) -> Path:
    return folder.with_name(folder.name + ".endpoint")


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def live_url(chdb_url: str) -> str | None:
    """``http://127.0.0.1:PORT`` of the process serving this chDB folder, if one answers."""
    folder = Path(chdb_url.removeprefix("chdb://"))
    try:
        pid, port = (int(w) for w in endpoint_file(folder).read_text().split())
    except (FileNotFoundError, ValueError):
        return None
    if pid == os.getpid() or not _answers(port):
        return None
    return f"http://127.0.0.1:{port}"


class ReadHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    engine: Any
    lock = threading.Lock()

    def log_message(self, format: str, *args: object) -> None:
        return

    def _reply(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if urlsplit(self.path).path.rstrip("/") == "/ping":
            self._reply(200, b"Ok.\n")
            return
        self._query(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._query(self.rfile.read(length) if length else b"")

    def _query(self, body: bytes) -> None:
        args = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
        in_url = args.get("query", [""])[0].encode()
        if (in_url and body) or not READ_ONLY.match(in_url or body):
            self._reply(403, b"Code: 164. rapport: this endpoint is read-only (the worker writes)\n")
            return
        sql = in_url or body
        params = {k.removeprefix("param_"): v[0] for k, v in args.items() if k.startswith("param_")}
        found = TRAILING_FORMAT.search(sql)
        fmt = found.group(1).decode() if found else args.get("default_format", ["TabSeparated"])[0]
        database = args.get("database", [""])[0]
        try:
            with self.lock:
                if database:
                    self.engine.query(f"USE `{database.replace('`', '')}`", "TabSeparated")
                result = self.engine.query(sql.decode(), fmt, params=params)
            data = result.bytes() if result is not None else b""
        except Exception as exc:
            self._reply(
                500,
                f"Code: 0. DB::Exception: {exc}\n".encode(),
                {"X-ClickHouse-Exception-Code": "0"},
            )
            return
        self._reply(200, data or b"", {"X-ClickHouse-Format": fmt, "X-ClickHouse-Timezone": "UTC"})


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A reader that hung up (the liveness probe reads a few bytes and closes) is normal."""
        return


class ReadEndpoint:
    """Serves reads of ``folder`` from this process until :meth:`close`."""

    def __init__(self, folder: Path, keep: Any = None) -> None:
        import chdb

        self.keep = keep  # a client that must stay open as long as the endpoint
        self.file = endpoint_file(folder)
        handler = type("Handler", (ReadHandler,), {"engine": chdb.connect(str(folder))})
        self.server = QuietServer(("127.0.0.1", 0), handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, name="read-endpoint", daemon=True)
        self.thread.start()
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(f"{os.getpid()} {self.port}\n")
        tmp.replace(self.file)
        log.info("warehouse reads served on 127.0.0.1:%s", self.port)

    def close(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.file.read_text().split()[0] == str(os.getpid()):
                self.file.unlink()
        self.server.shutdown()
        self.server.server_close()
