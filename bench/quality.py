"""Scoring quality on generated data with planted personas: do the scores see what was planted?

    python bench/quality.py [--accounts 200] [--seed 11] [--clean] [--json]

Runs the pure scoring core (the same one live and replay use) over a generated year — dirty by
default, as real mailboxes are (newsletters, lists, folder copies, a cc'd third party, personal
mail, an affiliate, prospects, a counterparty that goes silent: ``generate(dirty=True)``) — and
prints:

* health AUC: a thriving account scores above a slowly disengaging one, on the day the planted
  disengagement completes (and at the end of the data);
* preparedness AUC: a meeting of a well-prepared seller scores above one of a poorly prepared seller;
* alert precision / recall (per account): risk alerts (tier drop, sharp drop, key contact silent or
  gone, single-threaded) on accounts planted at risk (disengaging, losing their champion,
  single-threaded, and the dirt's counterparty that goes silent), versus on every other
  organisation (thriving, steady, seller hand-off, and all the dirt);
* early-warning lead time: days between the first disengagement alert and the planted completion.

Targets (issue 4): health AUC ≥ 0.9, preparedness AUC ≥ 0.9, alert recall ≥ 0.9 at precision ≥ 0.8,
median lead time ≥ 14 days.
"""

from __future__ import annotations

import argparse
import statistics
from datetime import date, datetime
from typing import Any

import orjson

from streams.contracts import Envelope, parse_time
from streams.identity.resolver import Resolver
from streams.scoring.profile import DEFAULT, load_profile
from streams.sinks.warehouse import collapse
from streams.sources.synthetic import SELLER_DOMAIN, generate
from streams.testing import run_in_memory

WARNING_KINDS = (
    "tier_drop",
    "health_drop",
    "engagement_drop",
    "contact_silent",
    "contact_left",
    "single_threaded",
)
PLANTED = ("slowly_disengaging", "champion_leaves", "single_threaded")


def auc(positives: list[float], negatives: list[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    if not positives or not negatives:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def score_dataset(
    accounts: int, seed: int, profile_path: str | None, dirty: bool = True
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    profile = load_profile(profile_path) if profile_path else DEFAULT
    events, labels = generate(accounts, seed=seed, dirty=dirty)
    resolver = Resolver([SELLER_DOMAIN])
    records: list[tuple[str, Envelope]] = []
    for e in events:
        try:
            records.extend((o.account_id, o.envelope) for o in resolver.resolve(e))
        except ValueError:
            continue  # mail that is no interaction (a dead letter in the pipeline)
    # Scored as of the end of the generated period (the clock when its input ends): closing the
    # days after it would make every account silent and alert on all of them.
    end = parse_time(labels["start"]).timestamp() + labels["days"] * 86400.0
    rows = run_in_memory(records, [5000], 86400.0, profile, end=end).sink.rows
    return {table: collapse(table, r) for table, r in rows.items()}, labels


def health_on(rows: list[dict[str, Any]], account: str, day: date) -> float | None:
    days = [r for r in rows if r["account_id"] == account and r["as_of"] <= day]
    return max(days, key=lambda r: r["as_of"])["score"] if days else None


def measure(accounts: int, seed: int, profile_path: str | None = None, dirty: bool = True) -> dict[str, Any]:
    tables, labels = score_dataset(accounts, seed, profile_path, dirty)
    planted = labels["accounts"]
    health = tables.get("account_health", [])
    thriving = [a for a, lab in planted.items() if lab["persona"] == "thriving"]
    fading = [a for a, lab in planted.items() if lab["persona"] == "slowly_disengaging"]

    at_completion: list[float] = []
    paired_thriving: list[float] = []
    for account in fading:
        day = datetime.fromisoformat(planted[account]["disengage_complete"]).date()
        score = health_on(health, account, day)
        if score is not None:
            at_completion.append(score)
            paired_thriving.extend(s for a in thriving if (s := health_on(health, a, day)) is not None)
    last_day = max(r["as_of"] for r in health)
    end_scores = {a: health_on(health, a, last_day) for a in planted}

    prep = tables.get("meeting_preparedness", [])
    seller_prep = {s: v["prep"] for s, v in labels["sellers"].items()}
    well = [r["score"] for r in prep if seller_prep.get(r["seller"]) == "well_prepared"]
    poor = [r["score"] for r in prep if seller_prep.get(r["seller"]) == "poorly_prepared"]

    alerts = [r for r in tables.get("alerts", []) if r["kind"] in WARNING_KINDS]
    alerted = {r["account_id"] for r in alerts}
    positives = {a for a, lab in planted.items() if lab["persona"] in PLANTED} | {
        org for org, lab in labels.get("noise", {}).items() if lab["kind"] == "goes_silent"
    }
    true_alerted = alerted & positives
    leads = []
    for account in fading:
        complete = datetime.fromisoformat(planted[account]["disengage_complete"])
        begun = datetime.fromisoformat(planted[account]["disengage_start"])
        raised = sorted(
            r["raised_at"] for r in alerts if r["account_id"] == account and r["raised_at"] >= begun
        )
        if raised:
            leads.append((complete - raised[0]).total_seconds() / 86400)

    by_kind: dict[str, int] = {}
    for r in tables.get("alerts", []):
        by_kind[r["kind"]] = by_kind.get(r["kind"], 0) + 1
    return {
        "accounts": accounts,
        "seed": seed,
        "dirty": dirty,
        "model_version": (profile_path and load_profile(profile_path).model_version) or DEFAULT.model_version,
        "health_auc_at_completion": round(auc(paired_thriving, at_completion), 3),
        "health_auc_at_end": round(
            auc([end_scores[a] or 0.0 for a in thriving], [end_scores[a] or 0.0 for a in fading]), 3
        ),
        "preparedness_auc": round(auc(well, poor), 3),
        "very_prepared_share_well": round(sum(s >= 75 for s in well) / max(len(well), 1), 3),
        "very_prepared_share_poor": round(sum(s >= 75 for s in poor) / max(len(poor), 1), 3),
        "alert_precision": round(len(true_alerted) / len(alerted), 3) if alerted else float("nan"),
        "alert_recall": round(len(true_alerted) / len(positives), 3) if positives else float("nan"),
        "lead_time_days_median": round(statistics.median(leads), 1) if leads else float("nan"),
        "disengaging_warned": f"{len(leads)}/{len(fading)}",
        "alerts_by_kind": by_kind,
        "rows": {table: len(r) for table, r in sorted(tables.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--profile", help="a scoring profile TOML to measure instead of the default")
    parser.add_argument("--clean", action="store_true", help="generate without the dirt of real mailboxes")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args()
    figures = measure(args.accounts, args.seed, args.profile, dirty=not args.clean)
    for name, value in figures.items():
        print(f"{name:>26}: {value}")
    if args.json:
        print(orjson.dumps(figures).decode())


if __name__ == "__main__":
    main()
