"""``rapport forget EMAIL`` on a real warehouse (made by replay) and a real broker's changelog."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from kafka.admin import NewTopic

from streams.cli import main
from streams.config import Settings
from streams.runtime.broker import admin
from streams.runtime.forget import ForgetError, checked_address, forget, holds, scrub
from streams.runtime.replay import replay
from streams.runtime.stack import Stack
from streams.runtime.stored_state import unpack
from streams.runtime.worker import STATE_CHANGELOG
from streams.sinks.warehouse import TABLE_KEYS, connect
from streams.sources.dataset import read_dataset, write_dataset
from tests.runtime.live_vs_replay import COMPARED, snapshot
from tests.runtime.topics import read_all


def mentioning(client: Any, address: str) -> dict[str, int]:
    """Rows (every stored version, not only FINAL) of each table whose any column holds ``address``."""
    found = {}
    for table in TABLE_KEYS:
        columns = [row[0] for row in client.query(f"DESCRIBE TABLE rapport.{table}").result_rows]
        condition = " OR ".join(f"position(lower(toString(`{c}`)), %(a)s) > 0" for c in columns)
        query = f"SELECT count() FROM rapport.{table} WHERE {condition}"
        found[table] = client.query(query, parameters={"a": address}).result_rows[0][0]
    return {table: n for table, n in found.items() if n}


@pytest.fixture(scope="module")
def forgotten(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("forget") / "home"
    env = {"RAPPORT_HOME": str(home), "RAPPORT_SELLER_DOMAINS": "demo-seller.com", "RAPPORT_PARTITIONS": "4"}
    settings = Settings.from_env(env)
    client = connect(settings.warehouse_url)
    try:
        replay(read_dataset(small_dataset), settings, client=client)
        # The person: a CRM contact who was the only buyer on some interactions and one of several on others.
        alone = Counter(
            b
            for (b,) in client.query(
                "SELECT buyers[1] FROM rapport.interactions FINAL WHERE length(buyers) = 1"
            ).result_rows
        )
        shared = {
            b
            for (bs,) in client.query(
                "SELECT buyers FROM rapport.interactions FINAL WHERE length(buyers) > 1"
            ).result_rows
            for b in bs
        }
        contacts = {e for (e,) in client.query("SELECT email FROM rapport.contacts FINAL").result_rows}
        address = next(b for b, _ in alone.most_common() if b in shared and b in contacts)
        account = client.query(
            f"SELECT account_id FROM rapport.contacts FINAL WHERE email = '{address}'"
        ).result_rows[0][0]
        before = mentioning(client, address)
        interactions = client.query(
            f"SELECT count() FROM rapport.interactions FINAL WHERE account_id = '{account}'"
        ).result_rows[0][0]
        by_time = in_time_copy(client, account)
    finally:
        client.close()
    untouched_before = snapshot(settings.warehouse_url)
    (settings.state_dir / "tables").mkdir(parents=True)  # a local state cache to be removed
    with Stack(settings) as stack:  # a broker (no worker) holding the state changelog
        changelog = STATE_CHANGELOG.format(app_id=settings.app_id)
        client_admin = admin(stack.bootstrap)
        client_admin.create_topics([NewTopic(changelog, 4, 1)])
        client_admin.close()
        env["RAPPORT_KAFKA_BOOTSTRAP"] = stack.bootstrap
        result = CliRunner().invoke(main, ["forget", address.upper(), "--json"], env=env)
        states = read_all(stack.bootstrap, {changelog})[changelog]
    assert result.exit_code == 0, result.output
    client = connect(settings.warehouse_url)
    try:
        after = mentioning(client, address)
        interactions_after = client.query(
            f"SELECT count() FROM rapport.interactions FINAL WHERE account_id = '{account}'"
        ).result_rows[0][0]
        by_time_after = in_time_copy(client, account)
        health = client.query(
            f"SELECT count(), max(version) FROM rapport.account_health FINAL WHERE account_id = '{account}'"
        ).result_rows[0]
    finally:
        client.close()
    return {
        "address": address,
        "account": account,
        "before": before,
        "after": after,
        "report": orjson.loads(result.output.strip().splitlines()[-1]),
        "interactions": (interactions, interactions_after),
        "by_time": (by_time, by_time_after),
        "health": health,
        "states": states,
        "untouched": (untouched_before, snapshot(settings.warehouse_url)),
        "settings": settings,
    }


def in_time_copy(client: Any, account: str) -> int:
    """The account's interactions in ``interactions_by_time`` (migration 007), as the boards count."""
    return int(
        client.query(
            f"SELECT count() FROM rapport.interactions_by_time FINAL WHERE account_id = '{account}'"
        ).result_rows[0][0]
    )


@pytest.mark.broker
def test_nothing_about_the_person_remains_in_any_table(forgotten: dict[str, Any]) -> None:
    print(forgotten["address"], forgotten["before"], forgotten["report"])
    assert {"contacts", "interactions"} <= forgotten["before"].keys()
    assert forgotten["after"] == {}


@pytest.mark.broker
def test_the_report_says_what_was_removed(forgotten: dict[str, Any]) -> None:
    report = forgotten["report"]
    assert report["email"] == forgotten["address"]
    assert report["deleted"]["contacts"] == 1
    before, after = forgotten["interactions"]
    assert report["deleted"]["interactions"] == before - after > 0  # where they were the only buyer
    assert forgotten["by_time"] == (before, after)  # the boards' time-sorted copy follows
    assert report["rewritten"]["interactions"] > 0  # where others remain
    assert report["rescored"] == [forgotten["account"]]
    assert report["score_rows"]["account_health"] > 0


@pytest.mark.broker
def test_the_account_is_rescored_and_other_accounts_are_untouched(forgotten: dict[str, Any]) -> None:
    count, version = forgotten["health"]
    assert count > 0 and version > 0
    account = forgotten["account"]
    before, after = forgotten["untouched"]
    for table in COMPARED:
        kept = [row for row in before[table] if account not in row and forgotten["address"] not in repr(row)]
        assert all(row in after[table] for row in kept), table


@pytest.mark.broker
def test_stream_state_is_replaced_by_the_recomputed_state(forgotten: dict[str, Any]) -> None:
    states = forgotten["states"]
    assert [orjson.loads(k) for k, _ in states] == [forgotten["account"]]
    state = unpack(states[0][1])
    assert state["account_id"] == forgotten["account"] and state["settled"] > 0
    assert forgotten["address"] not in orjson.dumps(state).decode()
    assert forgotten["report"]["state"].startswith("local state cache removed")
    assert not forgotten["settings"].state_dir.exists()


def test_scrub_removes_the_address_from_nested_values() -> None:
    address = "ann@buyer.example"
    detail = orjson.dumps({"sender": "Ann@Buyer.example", "attendees": {address: "ACCEPTED", "b@x.y": "NO"}})
    assert scrub([address, "b@x.y"], address) == ["b@x.y"]
    assert orjson.loads(scrub(detail.decode(), address)) == {"sender": "", "attendees": {"b@x.y": "NO"}}
    mail = {"sender": "ann@buyer.example", "sender_name_key": "3f2a", "size_bytes": 10}
    assert scrub(mail, address) == {"sender": "", "size_bytes": 10}  # their name key goes too
    other = {"sender": "bob@buyer.example", "sender_name_key": "77aa"}
    assert scrub(other, address) == other
    with pytest.raises(ForgetError, match="not an email address"):
        checked_address("x' OR 1=1 --")


def test_forget_refuses_while_a_worker_runs(tmp_path: Path) -> None:
    """A running worker would write the person back from its state: forget must refuse."""
    settings = Settings.from_env({"RAPPORT_HOME": str(tmp_path / "home")})
    settings.state_dir.mkdir(parents=True)
    (settings.state_dir / "worker-running").touch()
    settings.status_file.write_bytes(orjson.dumps({"pid": os.getpid()}))  # this live process
    client = connect(settings.warehouse_url)
    try:
        with pytest.raises(ForgetError, match="stop `rapport up` first"):
            forget("ann@buyer.example", settings, client)
    finally:
        client.close()


# --- exact forgetting: look-alikes, an apostrophe, a +tag, and nothing left on disk -------------

LOOK_ALIKE_TARGET = "o'brien@{domain}"


def lookalike_dataset(folder: Path) -> tuple[str, str, str, str]:
    """The small synthetic dataset with three contacts of one account renamed: the person
    (``o'brien@…``, written ``O'Brien+tag@…`` in half of the mail), ``joo'brien@…`` (the person's
    address is a substring of hers) and ``o'brien@….evil``. Returns (person, joann, evil, account)."""
    from streams.sources.synthetic import generate

    events, labels = generate(6, seed=11, days=60)
    contacts = [e.payload for e in events if e.schema == "crm_contact/1"]
    mail = Counter(
        a for e in events if e.schema == "raw_email/1" for a in [e.payload["from"], *e.payload["to"]]
    )
    account = Counter(c["account_id"] for c in contacts if mail[c["email"]]).most_common(1)[0][0]
    a, b, c = sorted((x["email"] for x in contacts if x["account_id"] == account), key=lambda e: -mail[e])[:3]
    domain = a.rpartition("@")[2]
    person = LOOK_ALIKE_TARGET.format(domain=domain)
    joann, evil = "jo" + person, person + ".evil"
    write_dataset(folder, events, labels)
    for path in folder.iterdir():
        lines = []
        for n, line in enumerate(path.read_bytes().splitlines(keepends=True)):
            raw = f"O'Brien+tag@{domain.upper()}" if b"raw_email" in line and n % 2 else person
            for old, new in (
                (a.encode(), raw.encode()),
                (b.encode(), joann.encode()),
                (c.encode(), evil.encode()),
            ):
                line = line.replace(old, new)
            lines.append(line)
        path.write_bytes(b"".join(lines))
    return person, joann, evil, account


def unpacked(path: Path) -> bytes:
    """A file's bytes, with ClickHouse's compressed blocks (``.bin``, ``.cidx``, ``.cmrk*``)
    decompressed: LZ4 keeps a repeated string as a back-reference, so raw bytes prove nothing."""
    import lz4.block
    import zstandard

    data = path.read_bytes()
    if path.name.endswith(".batch.o"):
        return broker_batch_text(data)
    if path.suffix not in {".bin", ".cidx"}:
        return data
    out, at = [data], 0
    while at + 25 <= len(data):
        method, size, plain = (
            data[at + 16],
            int.from_bytes(data[at + 17 : at + 21], "little"),
            int.from_bytes(data[at + 21 : at + 25], "little"),
        )
        body = data[at + 25 : at + 16 + size]
        if method == 0x82:
            out.append(lz4.block.decompress(body, uncompressed_size=plain))
        elif method == 0x90:
            out.append(zstandard.ZstdDecompressor().decompress(body, max_output_size=plain))
        elif method == 0x02:
            out.append(body)
        else:
            raise AssertionError(f"{path}: compression method {method:#x} the test cannot read")
        at += 16 + size
    return b"".join(out)


def broker_batch_text(data: bytes) -> bytes:
    """A stored Tansu batch (Kafka record batch v2, maybe compressed) as the text its records
    carry: keys and values, zlib-packed account states unpacked, base64 dead-letter originals
    decoded."""
    import base64
    import contextlib
    import re
    import zlib

    from kafka.record.default_records import DefaultRecordBatch

    out = [data]
    for record in DefaultRecordBatch(data):
        for field in (record.key, record.value):
            if not field:
                continue
            out.append(field)
            with contextlib.suppress(zlib.error):
                out.append(zlib.decompress(field))
            out.extend(base64.b64decode(b) for b in re.findall(rb'"original_b64":"([A-Za-z0-9+/=]*)"', field))
    return b"\n".join(out)


def found_on_disk(home: Path, pattern: bytes) -> list[str]:
    """Every file under ``home`` whose bytes (decompressed) hold ``pattern`` as a whole address."""
    import re

    whole = re.compile(rb"(?<![a-z0-9._%+'-])" + pattern + rb"(?![a-z0-9-]|\.[a-z0-9])", re.IGNORECASE)
    return sorted(
        str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and whole.search(unpacked(p))
    )


def test_forget_is_exact_and_leaves_no_copy_on_disk(tmp_path: Path) -> None:
    import re

    folder = tmp_path / "dataset"
    person, joann, evil, account = lookalike_dataset(folder)
    home = tmp_path / "home"
    env = {"RAPPORT_HOME": str(home), "RAPPORT_SELLER_DOMAINS": "demo-seller.com", "RAPPORT_PARTITIONS": "4"}
    settings = Settings.from_env(env)
    client = connect(settings.warehouse_url)
    try:
        replay(read_dataset(folder), settings, client=client)
        joann_before = {t: n for t, n in mentioning(client, joann).items()}
        evil_before = mentioning(client, evil)
    finally:
        client.close()
    local, _, domain = person.partition("@")
    pattern = re.escape(local.encode()) + rb"(\+[a-z0-9]+)?@" + re.escape(domain.encode())
    assert found_on_disk(home, pattern), "the person is on disk before forget (or the search is blind)"
    result = CliRunner().invoke(main, ["forget", "O'Brien+Tag@" + domain.upper(), "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.output.strip().splitlines()[-1])
    print(report)
    assert report["email"] == person
    assert report["deleted"]["contacts"] == 1 and report["deleted"]["interactions"] > 0
    assert report["rescored"] == [account] and report["score_rows"]["account_health"] > 0
    assert report["purged"]["outdated_parts"] > 0
    assert found_on_disk(home, pattern) == []
    client = connect(settings.warehouse_url)
    try:
        joann_after = mentioning(client, joann)
        evil_after = mentioning(client, evil)
        contact = client.query(
            "SELECT email, account_id FROM rapport.contacts FINAL WHERE email = %(e)s",
            parameters={"e": joann},
        ).result_rows
        health = client.query(
            "SELECT count() FROM rapport.account_health FINAL WHERE account_id = %(a)s",
            parameters={"a": account},
        ).result_rows[0][0]
        # the rows forget deleted are no longer expected: `warehouse check` sees no loss
        from streams.sinks.check import check_warehouse

        checked = check_warehouse(client, None, settings.written_dir)
    finally:
        client.close()
    assert checked.ok, checked.problems
    assert next(t for t in checked.tables if t.table == "interactions").expected
    assert contact == [(joann, account)]  # Joann intact, not "jo"
    assert joann_after.get("interactions") == joann_before.get("interactions") > 0
    assert evil_after.get("contacts") == evil_before.get("contacts") == 1
    assert health > 0  # her account keeps its health rows
    assert found_on_disk(home, re.escape(joann.encode()))  # and her address is still there


@pytest.mark.parametrize(
    "given, kept",
    [
        ("o'brien@acme.com", "o'brien@acme.com"),
        ("Ann+Deals@Acme.com", "ann@acme.com"),
        ('"ann lee"@acme.com', "ann lee@acme.com"),
        ("ann.o'neil+x@sub.acme.co.uk", "ann.o'neil@sub.acme.co.uk"),
    ],
)
def test_every_valid_address_is_accepted_and_normalised(given: str, kept: str) -> None:
    assert checked_address(given) == kept


def test_look_alikes_are_not_the_person() -> None:
    address = "ann@acme.com"
    for other in ("joann@acme.com", "ann@acme.com.evil", "ann@acme.community", "xann@acme.com"):
        assert not holds(other, address) and not holds([other], address)
        assert not holds(orjson.dumps({"from": other}).decode(), address)
        assert scrub([other, address], address) == [other]
    assert holds("From: Ann <Ann+x@ACME.com>\r\nTo: joann@acme.com", address)
    assert scrub("To: <ann@acme.com>, joann@acme.com", address) == "To: <>, joann@acme.com"


@pytest.mark.broker
def test_forget_while_the_worker_runs(tmp_path: Path) -> None:
    """A forget/1 control record through ``interactions``: the running worker applies it, and
    afterwards no file under RAPPORT_HOME holds the person: not the warehouse, not the logs, not
    the durable broker's stored topics (raw, interactions, changelogs, scores). The rewritten
    batches are then read by a restarted worker (CRCs checked by the consumer), which recovers
    its tables and carries on; an offline forget of a second person does the same."""
    import re
    import time

    from streams.identity.resolver import Resolver
    from streams.runtime.status import read_status
    from tests.runtime.live_vs_replay import produce

    folder = tmp_path / "dataset"
    person, joann, _, account = lookalike_dataset(folder)
    home = tmp_path / "home"
    env = {"RAPPORT_HOME": str(home), "RAPPORT_SELLER_DOMAINS": "demo-seller.com", "RAPPORT_PARTITIONS": "4"}
    settings = Settings.from_env(env)
    assert settings.broker_storage == "durable"
    local, _, domain = person.partition("@")
    pattern = re.escape(local.encode()) + rb"(\+[a-z0-9]+)?@" + re.escape(domain.encode())
    with Stack(settings) as stack:
        stack.start_workers()
        sent = produce(stack.bootstrap, read_dataset(folder), Resolver(settings.seller_domains))
        stack.wait_drained(sent, timeout_s=240)
        before = found_on_disk(home, pattern)
        assert [p for p in before if p.startswith("warehouse")]  # the search sees it
        assert [p for p in before if p.startswith("broker-data") and "/topics/raw/" in p]
        assert [p for p in before if "contact-directory-changelog" in p]
        assert [p for p in before if "account-state-changelog" in p]
        env["RAPPORT_KAFKA_BOOTSTRAP"] = stack.bootstrap
        result = CliRunner().invoke(main, ["forget", "O'Brien+x@" + domain, "--json"], env=env)
        assert result.exit_code == 0, result.output
        assert orjson.loads(result.output.strip().splitlines()[-1])["sent_to"] == "running workers"
        deadline = time.monotonic() + 120
        while (read_status(settings.status_file) or {}).get("counters", {}).get("forgets", 0) < 1:
            assert time.monotonic() < deadline, "the worker did not apply the forget"
            time.sleep(0.5)
        stack.wait_drained(sent, timeout_s=120)
        deadline = time.monotonic() + 60
        while (read_status(settings.status_file) or {}).get("counters", {}).get("forget_purges", 0) < 1:
            assert time.monotonic() < deadline, "the worker did not purge the broker's topics"
            time.sleep(0.5)
        assert read_status(settings.status_file)["counters"]["forget_tombstones"] > 0
        stack.stop_workers()
        still = found_on_disk(home, pattern)
        assert still == [], still
        # the rewritten batches are valid: a restarted worker recovers from them and carries on
        stack.start_workers()
        again = produce(stack.bootstrap, read_dataset(folder), Resolver(settings.seller_domains))
        stack.wait_drained(again, timeout_s=240)
        stack.stop_workers()
    log = stack.worker_log(0).read_text()
    assert "Traceback" not in log, log[-3000:]
    client = connect(settings.warehouse_url)
    try:
        contact = client.query(
            "SELECT email FROM rapport.contacts FINAL WHERE email = %(e)s", parameters={"e": joann}
        ).result_rows
        health = client.query(
            "SELECT count() FROM rapport.account_health FINAL WHERE account_id = %(a)s",
            parameters={"a": account},
        ).result_rows[0][0]
    finally:
        client.close()
    assert contact == [(joann,)] and health > 0
    # offline (workers stopped): forget starts the durable broker, appends the recomputed
    # states, then makes the stored records tombstones
    env.pop("RAPPORT_KAFKA_BOOTSTRAP")
    joann_pattern = re.escape(joann.encode())
    assert found_on_disk(home, joann_pattern)
    result = CliRunner().invoke(main, ["forget", joann, "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.output.strip().splitlines()[-1])
    assert report["broker"]["replaced"].get("raw", 0) > 0, report["broker"]
    assert report["states"]["written"] > 0
    left = found_on_disk(home, joann_pattern)
    assert left == [], left
