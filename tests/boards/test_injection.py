"""No variable value can break out of a board's SQL (issue 18, row 4).

Every panel and variable query runs on chDB with hostile values in every dashboard variable,
formatted exactly as Grafana formats them (:func:`streams.boards.macros.format_variable`), and
must return exactly what it returns for a harmless value that matches nothing: an injected
``OR 1=1`` or ``UNION ALL … FROM rapport.rejected_events`` would return more, a broken quote
would raise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from streams.boards.dashboards import value_of, values_of
from streams.boards.inventory import board_queries
from streams.boards.macros import ALL, QueryContext, expand, format_variable
from streams.config import Settings
from streams.runtime.replay import replay
from streams.sinks.warehouse import connect
from streams.sources.dataset import read_dataset, write_dataset
from streams.sources.synthetic import SELLER_DOMAIN, generate

QUERIES = board_queries()
VARIABLES = ("account", "team", "quarter")
NOTHING = {"account": "no-such-account", "team": ["no-such-team"], "quarter": "no-such-quarter"}
ATTACKS = [
    "x\\' OR 1=1 --",  # Grafana's singlequote leaves the backslash: this closed the string
    "' OR 1=1 --",
    "x\\' UNION ALL SELECT rejected_id, reason FROM rapport.rejected_events --",
    "\\",
    "'",
    "\\'",
    "%27",
    "%2C",
    "{a,b}",
    "$__all",
    "${account}",
    "$__timeFilter(x)",
    "') OR ('1'='1",
    "\u2019 OR 1=1",
    "\x00",
]
hostile = st.sampled_from(ATTACKS) | st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):
    """Eight accounts over 200 days (sellers in teams, three quarters), replayed through the
    resolver, scoring core and sink the live agents use."""
    root = tmp_path_factory.mktemp("injection")
    events, labels = generate(8, seed=5, days=200)
    write_dataset(root / "data", events, labels)
    env = Settings.from_env({"RAPPORT_HOME": str(root / "home"), "RAPPORT_SELLER_DOMAINS": SELLER_DOMAIN})
    client = connect(env.warehouse_url)
    replay(read_dataset(root / "data"), env, client=client)
    yield client
    client.close()


@pytest.fixture(scope="module")
def known(warehouse) -> dict[str, set[str]]:
    """The values that do match something (a hostile value equal to one is not an attack)."""
    query = {
        "account": "SELECT DISTINCT account_id FROM rapport.account_health FINAL",
        "team": "SELECT DISTINCT team FROM rapport.sellers FINAL",
        "quarter": "SELECT DISTINCT toString(toStartOfQuarter(as_of)) FROM rapport.account_health FINAL",
    }
    found = {name: {str(r[0]) for r in warehouse.query(sql).result_rows} for name, sql in query.items()}
    assert found["account"] and found["quarter"], found
    found["team"].add("")  # the team of a seller the LEFT JOIN finds no row for
    return found


def context(warehouse, variables: dict[str, Any]) -> QueryContext:
    first, last = warehouse.query(
        "SELECT min(occurred_at), max(occurred_at) FROM rapport.interactions FINAL"
    ).result_rows[0]
    return QueryContext(
        first.replace(tzinfo=UTC),
        last.replace(tzinfo=UTC) + timedelta(days=1),
        interval_s=86400,
        variables=variables,
    )


def results(warehouse, variables: dict[str, Any]) -> dict[str, list[str]]:
    ctx = context(warehouse, variables)
    return {
        q.where: sorted(repr(row) for row in warehouse.query(expand(q.sql, ctx)).result_rows) for q in QUERIES
    }


@pytest.fixture(scope="module")
def harmless(warehouse) -> dict[str, list[str]]:
    return results(warehouse, NOTHING)


def test_every_variable_reaches_sql_percent_encoded():
    uses = {name: 0 for name in VARIABLES}
    for query in QUERIES:
        for name in VARIABLES:
            assert f"${{{name}:singlequote}}" not in query.sql and f"${name} " not in query.sql
            uses[name] += query.sql.count(f"${{{name}:percentencode}}")
    assert all(uses.values()), uses


def test_a_viewer_cannot_type_a_value_of_their_own():
    from streams.boards.files import dashboard_json

    variables = [v for model in dashboard_json().values() for v in model["templating"].get("list", [])]
    assert variables and all(v.get("allowCustomValue") is False for v in variables)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(account=hostile, teams=st.lists(hostile, min_size=1, max_size=3), quarter=hostile)
def test_hostile_values_change_nothing_but_the_filter(warehouse, known, harmless, account, teams, quarter):
    assume(account not in known["account"])
    pieces = ",".join(teams)  # Grafana joins a multi-value before encoding it
    assume(pieces not in ("", ALL) and not set(pieces.split(",")) & known["team"])
    day = datetime(2025, 1, 1, tzinfo=UTC)
    ctx = QueryContext(day, day + timedelta(days=1), variables={"q": quarter})
    (zero,) = warehouse.query(expand(f"SELECT toDateOrZero({value_of('q')}) = toDate(0)", ctx)).result_rows[0]
    assume(zero)  # a value that reads as a date is a real quarter, not an attack
    assert results(warehouse, {"account": account, "team": teams, "quarter": quarter}) == harmless


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=hostile, values=st.lists(hostile.filter(lambda v: "," not in v), min_size=1, max_size=4))
def test_percent_encoded_values_reach_clickhouse_unchanged(warehouse, value, values):
    """What a board filters on is the exact value the viewer picked, quotes, backslashes, ``$__``
    and all (singlequote lost backslashes; a value holding ``$__`` was expanded as a macro)."""
    day = datetime(2025, 1, 1, tzinfo=UTC)
    ctx = QueryContext(day, day + timedelta(days=1), variables={"v": value, "vs": values})
    (row,) = warehouse.query(expand(f"SELECT {value_of('v')}, {values_of('vs')}", ctx)).result_rows
    assert row == (value, values)


def test_grafana_singlequote_is_what_made_the_boards_injectable(warehouse):
    """The emulator formats as Grafana does, so it shows the hole the old boards had."""
    attack = "x\\' OR 1=1 --"
    assert format_variable(attack, "singlequote") == "'x\\\\' OR 1=1 --'"
    (count,) = warehouse.query(
        f"SELECT count() FROM (SELECT DISTINCT account_id FROM rapport.account_health FINAL "
        f"WHERE account_id = {format_variable(attack, 'singlequote')}\n)"
    ).result_rows[0]
    assert count > 0  # every account: the value closed the string literal
