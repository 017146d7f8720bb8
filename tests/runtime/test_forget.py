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
from streams.runtime.forget import ForgetError, checked_address, forget, scrub
from streams.runtime.replay import replay
from streams.runtime.stack import Stack
from streams.runtime.stored_state import unpack
from streams.runtime.worker import STATE_CHANGELOG
from streams.sinks.warehouse import TABLE_KEYS, connect
from streams.sources.dataset import read_dataset
from tests.runtime.live_vs_replay import COMPARED, snapshot
from tests.runtime.topics import read_all

pytestmark = pytest.mark.broker


def mentioning(client: Any, address: str) -> dict[str, int]:
    """Rows (every stored version, not only FINAL) of each table whose any column holds ``address``."""
    found = {}
    for table in TABLE_KEYS:
        columns = [row[0] for row in client.query(f"DESCRIBE TABLE rapport.{table}").result_rows]
        condition = " OR ".join(f"position(lower(toString(`{c}`)), '{address}') > 0" for c in columns)
        found[table] = client.query(f"SELECT count() FROM rapport.{table} WHERE {condition}").result_rows[0][
            0
        ]
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
        "health": health,
        "states": states,
        "untouched": (untouched_before, snapshot(settings.warehouse_url)),
        "settings": settings,
    }


def test_nothing_about_the_person_remains_in_any_table(forgotten: dict[str, Any]) -> None:
    print(forgotten["address"], forgotten["before"], forgotten["report"])
    assert {"contacts", "interactions"} <= forgotten["before"].keys()
    assert forgotten["after"] == {}


def test_the_report_says_what_was_removed(forgotten: dict[str, Any]) -> None:
    report = forgotten["report"]
    assert report["email"] == forgotten["address"]
    assert report["deleted"]["contacts"] == 1
    before, after = forgotten["interactions"]
    assert report["deleted"]["interactions"] == before - after > 0  # where they were the only buyer
    assert report["rewritten"]["interactions"] > 0  # where others remain
    assert report["rescored"] == [forgotten["account"]]
    assert report["score_rows"]["account_health"] > 0


def test_the_account_is_rescored_and_other_accounts_are_untouched(forgotten: dict[str, Any]) -> None:
    count, version = forgotten["health"]
    assert count > 0 and version > 0
    account = forgotten["account"]
    before, after = forgotten["untouched"]
    for table in COMPARED:
        kept = [row for row in before[table] if account not in row and forgotten["address"] not in repr(row)]
        assert all(row in after[table] for row in kept), table


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
