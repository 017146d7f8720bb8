"""The broker's local object store speaks the part of S3 Tansu uses, with its conditions."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from streams.runtime.object_store import Handler, Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[str]:
    Handler.store = Store(tmp_path / "data")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/bucket"
    server.shutdown()
    server.server_close()


def call(
    url: str, method: str = "GET", body: bytes | None = None, **headers: str
) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def test_conditional_puts_are_compare_and_swap(store: str) -> None:
    key = f"{store}/clusters/c/topics/t/partitions/0000000000/watermark.json"
    status, _, headers = call(key, "PUT", b'{"high":1}', **{"If-None-Match": "*"})
    assert status == 200
    first = headers["ETag"]
    assert call(key, "PUT", b'{"high":9}', **{"If-None-Match": "*"})[0] == 412  # exists already
    status, _, headers = call(key, "PUT", b'{"high":2}', **{"If-Match": first})
    assert status == 200 and headers["ETag"] != first
    assert call(key, "PUT", b'{"high":3}', **{"If-Match": first})[0] == 412  # stale version
    status, body, headers = call(key)
    assert (status, body) == (200, b'{"high":2}') and "Last-Modified" in headers
    # same size, new content: a new tag (tags from inode and size alone collided)
    status, _, headers = call(key, "PUT", b'{"high":4}', **{"If-Match": headers["ETag"]})
    assert status == 200
    assert call(key, "PUT", b'{"high":5}', **{"If-Match": headers["ETag"]})[0] == 200
    assert call(f"{store}/missing", "PUT", b"x", **{"If-Match": first})[0] == 412


def test_list_head_delete(store: str) -> None:
    for offset in (0, 3, 10):
        assert call(f"{store}/p/records/{offset:020}.batch", "PUT", b"batch")[0] == 200
    assert call(f"{store}/p/watermark.json", "PUT", b"{}")[0] == 200
    status, body, _ = call(f"{store}?list-type=2&prefix=p/records/")
    assert status == 200 and body.count(b"<Key>") == 3 and b"<IsTruncated>false" in body
    assert body.index(b"00000000000000000003") < body.index(b"00000000000000000010")
    _, body, _ = call(f"{store}?list-type=2&prefix=p/&delimiter=/")
    assert b"<Prefix>p/records/</Prefix>" in body and body.count(b"<Key>") == 1
    _, body, _ = call(f"{store}?list-type=2&prefix=p/records/&max-keys=2")
    assert body.count(b"<Key>") == 2 and b"<IsTruncated>true" in body
    token = body.split(b"<NextContinuationToken>")[1].split(b"<")[0].decode()
    _, body, _ = call(f"{store}?list-type=2&prefix=p/records/&continuation-token={token}")
    assert body.count(b"<Key>") == 1
    status, body, headers = call(f"{store}/p/watermark.json", "HEAD")
    assert status == 200 and headers["Content-Length"] == "2"
    assert call(f"{store}/p/watermark.json", "DELETE")[0] == 204
    assert call(f"{store}/p/watermark.json")[0] == 404
    assert call(f"{store}/../escape", "PUT", b"x")[0] == 400
