"""The read-side commands after one replay of a generated dataset with a complete quarter.

Every command runs for real in a subprocess (chDB allows one open folder per process), and
figures are checked against SQL over the same warehouse.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.sources.dataset import write_dataset
from streams.sources.synthetic import SELLER_DOMAIN, generate
from streams.views.review import Quarter, recommended_actions
from streams.views.review_page import THIS_QUARTER, account_page, index_page, page_name

QUARTER = Quarter(2025, 3)  # the data runs from 2025-06-01 for 140 days: Q3 is the last complete one


class Rapport:
    def __init__(self, home: Path) -> None:
        self.env = {
            **os.environ,
            "RAPPORT_HOME": str(home),
            "RAPPORT_SELLER_DOMAINS": SELLER_DOMAIN,
            "COLUMNS": "250",
        }

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "streams", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )

    def sql(self, query: str) -> list[dict[str, Any]]:
        done = self("warehouse", "query", query, "--json")
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture(scope="module")
def rapport(tmp_path_factory: pytest.TempPathFactory) -> Rapport:
    """Eight accounts over 140 days from 2025-06-01 (alerts raised and resolved), replayed once."""
    folder = tmp_path_factory.mktemp("views-dataset")
    events, labels = generate(8, seed=5, start=datetime(2025, 6, 1, tzinfo=UTC), days=140)
    write_dataset(folder, events, labels)
    run = Rapport(tmp_path_factory.mktemp("views-home"))
    replayed = run("replay", str(folder))
    assert replayed.returncode == 0, replayed.stderr
    return run


@pytest.fixture(scope="module")
def review_dir(rapport: Rapport, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("review")
    done = rapport("review", "--all", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"for {QUARTER}" in done.stderr  # the default is the last complete quarter
    return out


def test_review_all_writes_the_index_and_one_page_per_account(rapport: Rapport, review_dir: Path) -> None:
    accounts = rapport.sql(
        "SELECT DISTINCT account_id FROM rapport.account_health FINAL "
        f"WHERE as_of BETWEEN '{QUARTER.start}' AND '{QUARTER.end}' ORDER BY account_id"
    )
    pages = sorted(p.name for p in review_dir.glob("*.html"))
    assert len(accounts) == 8
    assert pages == sorted(["index.html", *(page_name(a["account_id"]) for a in accounts)])
    index = (review_dir / "index.html").read_text()
    assert all(f'href="{page_name(a["account_id"])}"' in index for a in accounts)


def _page_figure(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">([^<]*)<', page)
    assert found, f"no #{element_id} in the page"
    return found[1]


def test_review_figures_equal_the_warehouse(rapport: Rapport, review_dir: Path) -> None:
    (busiest,) = rapport.sql(
        "SELECT account_id FROM rapport.alerts FINAL GROUP BY account_id "
        "ORDER BY count() DESC, account_id LIMIT 1"
    )
    account = busiest["account_id"]
    span = f"BETWEEN '{QUARTER.start}' AND '{QUARTER.end}'"
    (expected,) = rapport.sql(
        "SELECT argMax(score, as_of) AS end_score, round(avg(score), 1) AS mean, "
        "argMax(depth, as_of) AS end_depth, round(avg(depth), 1) AS mean_depth, "
        "argMax(engaged_contacts, as_of) AS engaged "
        f"FROM rapport.account_health FINAL WHERE account_id = '{account}' AND as_of {span}"
    )
    (meetings,) = rapport.sql(
        "SELECT count() AS n, round(avg(score), 1) AS mean FROM rapport.meeting_preparedness FINAL "
        f"WHERE account_id = '{account}' AND toDate(starts_at) {span}"
    )
    (alerts,) = rapport.sql(
        "SELECT count() AS n FROM rapport.alerts FINAL "
        f"WHERE account_id = '{account}' AND toDate(raised_at) {span}"
    )
    page = (review_dir / page_name(account)).read_text()
    assert _page_figure(page, "health-end").startswith(f"{expected['end_score']:.0f} (")
    assert _page_figure(page, "health-mean") == f"{expected['mean']:.1f}"
    assert _page_figure(page, "depth-end") == f"{expected['end_depth']:.0f}"
    assert _page_figure(page, "depth-mean") == f"{expected['mean_depth']:.1f}"
    assert _page_figure(page, "engaged").startswith(f"{expected['engaged']} engaged")
    assert _page_figure(page, "alert-count").startswith(f"{alerts['n']} alert(s)") and alerts["n"] > 0
    assert _page_figure(page, "preparedness").startswith(
        f"{meetings['n']} meeting(s), mean preparedness {meetings['mean']:.1f}"
    )
    (top,) = rapport.sql(
        "SELECT interaction_id FROM rapport.interaction_value FINAL "
        f"WHERE account_id = '{account}' AND toDate(occurred_at) {span} "
        "ORDER BY score DESC, occurred_at LIMIT 1"
    )
    assert 'id="top-0"' in page and top["interaction_id"].replace("<", "&lt;").replace(">", "&gt;") in page
    assert "gap:" in page  # every recommended action names its gap


def _chromium() -> str:
    found = shutil.which("chromium")
    assert found, "Debian's chromium is needed (`apt-get install chromium`; .ci/run installs it)"
    return found


def _screenshot(page: Path, png: Path, net_log: Path) -> None:
    subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--screenshot={png}",
            "--window-size=1200,900",
            f"--log-net-log={net_log}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )


def _page_requests(net_log: Path) -> set[str]:
    """Network URLs the page itself asked for (the browser's own update checks are not the page's)."""
    events = json.loads(net_log.read_text())["events"]
    return {
        e["params"]["url"]
        for e in events
        if str(e.get("params", {}).get("url", "")).startswith(("http", "ws"))
        and any(
            "file://" in str(o.get("params", {}).get("network_isolation_key", ""))
            for o in events
            if o.get("source", {}).get("id") == e.get("source", {}).get("id")
        )
    }


def _chart_line_pixels(png: Path) -> int:
    """Pixels of this quarter's chart-line colour in a screenshot."""
    from PIL import Image

    image = Image.open(png).convert("RGB")
    wanted = tuple(int(THIS_QUARTER[i : i + 2], 16) for i in (1, 3, 5))
    colours = image.getcolors(maxcolors=1 << 24) or []
    return sum(
        n for n, colour in colours if all(abs(a - b) < 40 for a, b in zip(colour, wanted, strict=True))
    )


def test_after_rapport_demo_review_all_writes_the_index_and_a_rendered_page_per_account(
    tmp_path: Path,
) -> None:
    """The acceptance flow as a user runs it: `rapport demo` (live broker and worker), then
    `rapport review --all` for the default quarter, one page opened in headless Chromium."""
    run = Rapport(tmp_path / "home")
    demo = run("demo", "--accounts", "5", "--seed", "3")
    assert demo.returncode == 0, demo.stderr[-2000:]
    out = tmp_path / "review"
    done = run("review", "--all", "--out", str(out))
    assert done.returncode == 0, done.stderr
    quarter = re.search(r"for (\d{4})Q(\d)", done.stderr)
    assert quarter, done.stderr
    chosen = Quarter(int(quarter[1]), int(quarter[2]))
    accounts = run.sql(
        "SELECT DISTINCT account_id FROM rapport.account_health FINAL "
        f"WHERE as_of BETWEEN '{chosen.start}' AND '{chosen.end}' ORDER BY account_id"
    )
    assert len(accounts) == 5
    pages = sorted(p.name for p in out.glob("*.html"))
    assert pages == sorted(["index.html", *(page_name(a["account_id"]) for a in accounts)])
    page = out / page_name(accounts[0]["account_id"])
    _screenshot(page, tmp_path / "demo.png", tmp_path / "demo-net.json")
    assert _page_requests(tmp_path / "demo-net.json") == set()
    assert _chart_line_pixels(tmp_path / "demo.png") > 300


def test_a_review_page_renders_its_charts_in_headless_chromium_without_the_network(
    review_dir: Path, tmp_path: Path
) -> None:

    page = review_dir / page_name("bluelabs001.com")
    html = page.read_text()
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "url(" not in html and "@import" not in html and "<script" not in html
    _screenshot(page, tmp_path / "page.png", tmp_path / "net.json")
    assert _page_requests(tmp_path / "net.json") == set()
    line_pixels = _chart_line_pixels(tmp_path / "page.png")
    assert line_pixels > 300, f"only {line_pixels} pixels of the chart line colour: charts did not render"
    # the network check can fail: the same page with one external image is caught
    leaky = tmp_path / "leaky.html"
    leaky.write_text(
        re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html).replace(
            "<body>", '<body><img src="http://192.0.2.1/x.png">'
        )
    )
    _screenshot(leaky, tmp_path / "leaky.png", tmp_path / "leaky.json")
    assert _page_requests(tmp_path / "leaky.json") == {"http://192.0.2.1/x.png"}


def test_accounts_json_matches_the_table_and_the_warehouse(rapport: Rapport) -> None:
    listed = json.loads(rapport("accounts", "--json").stdout)
    latest = {
        r["account_id"]: r
        for r in rapport.sql(
            "SELECT account_id, score, tier FROM rapport.account_health FINAL "
            "ORDER BY account_id, as_of DESC LIMIT 1 BY account_id"
        )
    }
    open_alerts = {
        r["account_id"]: r["n"]
        for r in rapport.sql(
            "SELECT account_id, count() AS n FROM rapport.alerts FINAL WHERE status = 'open' "
            "GROUP BY account_id"
        )
    }
    assert {a["account_id"] for a in listed} == set(latest)
    assert [a["score"] for a in listed] == sorted(a["score"] for a in listed)  # worst health first
    for a in listed:
        assert (a["score"], a["tier"]) == (latest[a["account_id"]]["score"], latest[a["account_id"]]["tier"])
        assert a["open_alerts"] == open_alerts.get(a["account_id"], 0)
    table = rapport("accounts").stdout
    assert [line.split("│")[1].strip() for line in table.splitlines() if line.startswith("│")] == [
        a["account_id"] for a in listed
    ]
    at_risk = json.loads(rapport("accounts", "--at-risk", "--json").stdout)
    assert at_risk and all(a["tier"] in ("at_risk", "disengaged") or a["open_alerts"] for a in at_risk)
    assert len(at_risk) < len(listed)
    owner = listed[0]["owner"]
    mine = json.loads(
        rapport("accounts", "--seller", owner, "--sort", "account", "--limit", "3", "--json").stdout
    )
    assert mine and len(mine) <= 3 and all(owner in (a["owner"], *a["sellers_engaged"]) for a in mine)
    assert [a["account_id"] for a in mine] == sorted(a["account_id"] for a in mine)


def test_alerts_json_matches_the_table_and_the_warehouse(rapport: Rapport) -> None:
    listed = json.loads(rapport("alerts", "--json").stdout)
    stored = rapport.sql("SELECT alert_id, reason, status FROM rapport.alerts FINAL")
    assert listed and len(listed) == len(stored)
    assert {(a["alert_id"], a["reason"], a["status"]) for a in listed} == {
        (s["alert_id"], s["reason"], s["status"]) for s in stored
    }
    assert [a["raised_at"] for a in listed] == sorted((a["raised_at"] for a in listed), reverse=True)
    table = rapport("alerts").stdout
    assert all(a["reason"] in table for a in listed)
    since = listed[len(listed) // 2]["raised_at"][:10]
    recent = json.loads(rapport("alerts", "--since", since, "--json").stdout)
    assert recent and all(a["raised_at"][:10] >= since for a in recent) and len(recent) < len(listed) + 1


def test_account_shows_scores_contacts_meetings_value_and_alerts(rapport: Rapport) -> None:
    (row,) = rapport.sql("SELECT account_id FROM rapport.alerts FINAL ORDER BY raised_at LIMIT 1")
    view = json.loads(rapport("account", row["account_id"], "--json").stdout)
    (contacts,) = rapport.sql(
        "SELECT uniqExact(arrayJoin(buyers)) AS n FROM rapport.interactions FINAL "
        f"WHERE account_id = '{row['account_id']}' AND automated = 0"
    )
    assert view["signals"] and len(view["contacts"]) == contacts["n"]
    assert view["meetings"] and view["value_moments"] and view["alerts"]
    assert all(c["seniority"] and c["department"] for c in view["contacts"])
    shown = rapport("account", row["account_id"])
    assert shown.returncode == 0 and view["contacts"][0]["email"] in shown.stdout


def test_edges_say_what_to_do_and_fail_when_nothing_was_produced(rapport: Rapport, tmp_path: Path) -> None:
    unknown = rapport("account", "no-such-account.example")
    assert (
        unknown.returncode == 1 and "no health scores for account 'no-such-account.example'" in unknown.stderr
    )
    unknown = rapport("review", "--account", "no-such-account.example", "--out", str(tmp_path / "a"))
    assert unknown.returncode == 1 and "rapport accounts" in unknown.stderr
    empty_quarter = rapport("review", "--all", "--quarter", "2020Q1", "--out", str(tmp_path / "b"))
    assert empty_quarter.returncode == 1 and "no scores in 2020Q1" in empty_quarter.stderr
    assert "--quarter" in empty_quarter.stderr and not (tmp_path / "b").exists()
    bad = rapport("review", "--all", "--quarter", "Q3", "--out", str(tmp_path / "c"))
    assert bad.returncode == 2 and "'Q3' is not a quarter like 2026Q3" in bad.stderr
    neither = rapport("review", "--out", str(tmp_path / "d"))
    assert neither.returncode == 2 and "either --account ID or --all" in neither.stderr
    empty = Rapport(tmp_path / "empty-home")
    for command in (
        ("accounts",),
        ("alerts",),
        ("account", "x"),
        ("review", "--all", "--out", str(tmp_path / "e")),
    ):
        done = empty(*command)
        assert done.returncode == 1, command
        assert "no scores yet" in done.stderr and "rapport replay" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "e").exists()


@given(st.integers(min_value=1990, max_value=2100), st.integers(min_value=1, max_value=4))
def test_quarters_tile_the_calendar(year: int, number: int) -> None:
    quarter = Quarter(year, number)
    assert Quarter.parse(str(quarter)) == quarter
    assert quarter.previous().next() == quarter
    assert (quarter.next().start - quarter.end).days == 1
    assert Quarter.of(quarter.start) == Quarter.of(quarter.end) == quarter


EVIL = "<script>alert(1)</script>\"'&"


def hostile_review() -> dict[str, Any]:
    """A review whose every text came from hostile mail."""
    moment = {
        "interaction_id": EVIL,
        "occurred_at": "2025-08-01T10:00:00",
        "score": 50.0,
        "channel": EVIL,
        "direction": EVIL,
        "outcomes": [EVIL],
        "evidence": [{"outcome": EVIL, "points": 30.0, "event": EVIL}],
        "sellers": [EVIL],
        "buyers": [EVIL],
        "kind": EVIL,
        "status": EVIL,
        "source_event_id": EVIL,
    }
    point = {"as_of": "2025-08-01", "score": 50.0, "depth": 40.0}
    return {
        "account_id": EVIL,
        "name": EVIL,
        "owner": EVIL,
        "quarter": "2025Q3",
        "previous_quarter": "2025Q2",
        "period": {"start": "2025-07-01", "end": "2025-09-30"},
        "health": {
            "series": [point],
            "previous_series": [point],
            "start": {**point, "tier": EVIL},
            "end": {**point, "tier": EVIL, "engaged_contacts": 1, "top_reason": f"{EVIL}: 1 of 4"},
            "mean": 50.0,
            "previous_mean": 60.0,
            "mean_depth": 40.0,
            "previous_mean_depth": None,
        },
        "coverage": {
            "then": [f"exec:{EVIL}"],
            "then_as_of": "2025-06-30",
            "now": [f"senior:{EVIL}"],
            "now_as_of": "2025-09-30",
        },
        "contacts": {"gained": [EVIL], "lost": [EVIL], "engaged": 1},
        "top_moments": [moment],
        "weakest": [moment],
        "preparedness": {
            "meetings": [
                {
                    "meeting_id": EVIL,
                    "starts_at": "2025-08-01T10:00:00",
                    "seller": EVIL,
                    "status": EVIL,
                    "score": 50.0,
                    "tier": EVIL,
                    "missing": ["agenda"],
                    "buyer_attendees": 1,
                }
            ],
            "mean": 50.0,
            "previous_mean": None,
            "tiers": {},
            "most_missing": [["agenda", 1]],
        },
        "alerts": [
            {
                "alert_id": EVIL,
                "raised_at": "2025-08-01T10:00:00",
                "kind": EVIL,
                "severity": EVIL,
                "status": "resolved",
                "subject": EVIL,
                "reason": EVIL,
                "ended_at": "2025-08-02T00:00:00",
            }
        ],
        "open_at_end": [{"kind": EVIL, "severity": EVIL, "reason": EVIL, "subject": EVIL}],
    }


def test_recommended_actions_each_name_their_gap() -> None:
    review = hostile_review()
    actions = recommended_actions(review)
    gaps = " | ".join(a["gap"] for a in actions)
    assert all(a["action"] and a["gap"] for a in actions)
    assert f"Reconnect with {EVIL}" in [a["action"] for a in actions]
    assert "no engaged executive" in gaps and "agenda missing in 1 of 1 meetings" in gaps
    assert "mean health fell from 60.0 to 50.0" in gaps and EVIL in gaps  # the open alert's reason
    review["contacts"]["lost"] = []
    assert len(recommended_actions(review)) == len(actions) - 1


def test_a_review_page_escapes_everything_that_came_from_mail() -> None:
    review = hostile_review()
    page = account_page({**review, "actions": recommended_actions(review)})
    assert "<script" not in page and "'&\"" not in page
    assert page.count("&lt;script&gt;") >= 20


@given(st.text(max_size=40), st.text(max_size=40))
def test_page_names_are_safe_and_distinct(one: str, other: str) -> None:
    assert re.fullmatch(r"[A-Za-z0-9._-]+\.html", page_name(one))
    assert not page_name(one).startswith(".")
    if one != other:
        assert page_name(one) != page_name(other)


def test_the_index_escapes_what_came_from_mail() -> None:
    hostile = '<script>alert("x")</script>'
    page = index_page(
        "2025Q3",
        [
            {
                "account_id": 'a"><img src=x>',
                "name": hostile,
                "score": 50.0,
                "tier": "watch",
                "change": None,
                "depth": 10.0,
                "meetings": 0,
                "preparedness": None,
                "alerts": 0,
                "actions": 1,
                "tier_then": "watch",
            }
        ],
    )
    assert "<script>" not in page and "<img" not in page and "&lt;script&gt;" in page
