"""The review as self-contained HTML: inline CSS, charts as inline SVG drawn here, no scripts.

A Content-Security-Policy that forbids every network load makes "readable offline" a property of
the page, not a promise. Everything from the warehouse is escaped: names and addresses come from
real mail.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from html import escape
from pathlib import Path
from typing import Any

from streams.scoring.health import TIERS
from streams.scoring.titles import SENIORITIES
from streams.views.labels import (
    ALERT_KINDS,
    OUTCOMES,
    PREPAREDNESS_SIGNALS,
    buyer_did,
    happened,
    label,
    people,
    top_reason,
)
from streams.views.labels import TIERS as TIER_LABELS

PARTIAL = '<p class="muted">Over 20 engaged contacts: gained and lost compare the first 20 listed.</p>'
NO_NETWORK = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
THIS_QUARTER, PREVIOUS_QUARTER = "#1f6feb", "#9a6700"
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#1f2328;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:left;
vertical-align:top;overflow-wrap:normal;word-break:normal;hyphens:none}th{background:#f6f8fa;white-space:nowrap}
.num,.when,.tag{white-space:nowrap}.num{text-align:right}.id{overflow-wrap:anywhere;font-size:12px}
.muted{color:#656d76}.charts{display:flex;gap:16px;flex-wrap:wrap;break-inside:avoid}
.cell-on{background:#aceebb}.cell-gained{background:#1a7f37;color:#fff}.cell-lost{background:#ffcecb}
.figures td{min-width:90px}tr,li{break-inside:avoid}h2{break-after:avoid}
@page{size:A4 landscape;margin:12mm}@media print{body{margin:0 auto;max-width:none}}
"""


def page_name(account_id: str) -> str:
    """A safe file name for an account id (ids are domains, CRM ids or anything else)."""
    slug = re.sub(r"[^A-Za-z0-9._-]", "_", account_id).strip("._") or "account"
    if slug != account_id:
        slug += "-" + hashlib.sha256(account_id.encode()).hexdigest()[:8]
    return f"{slug}.html"


def _text(value: Any) -> str:
    return escape("" if value is None else str(value))


def _num(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _change(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1f}"


def _day(value: Any) -> date:
    return date.fromisoformat(str(value)[:10])


def line_chart(
    title: str, field: str, series: list[tuple[str, str, list[dict[str, Any]]]], start: date, days: int
) -> str:
    """Lines of ``field`` (0–100) over the quarter from ``start`` (``days`` long), dated on the x
    axis; each (label, colour, rows) series is drawn by its day of quarter, so the previous
    quarter lies under the same dates as the day it corresponds to."""
    width, height, left, bottom, top = 480, 240, 34, 44, 26
    plot_w, plot_h = width - left - 14, height - bottom - top
    parts = [
        f'<svg width="{width}" height="{height}" role="img" '
        f'aria-label="{_text(title)}"><rect width="{width}" height="{height}" fill="#fff"/>'
        f'<text x="{left}" y="16" font-size="13" font-weight="600">{_text(title)}</text>'
    ]
    for tick in (0, 25, 50, 75, 100):
        y = top + plot_h * (1 - tick / 100)
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eaeef2"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end" '
            f'fill="#656d76">{tick}</text>'
        )
    month = start
    while (month - start).days < days:  # a dated tick at the first of each month, and the last day
        x = left + plot_w * (month - start).days / (days - 1)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}" stroke="#8c959f"/>'
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" font-size="10" text-anchor="middle" '
            f'fill="#656d76">{month:%-d %b %Y}</text>'
        )
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    parts.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#8c959f"/>'
    )
    for index, (legend, colour, points) in enumerate(series):
        if points:
            first = _day(points[0]["as_of"])
            origin = date(first.year, 3 * ((first.month - 1) // 3) + 1, 1)
            xy = " ".join(
                f"{left + plot_w * min((_day(p['as_of']) - origin).days, days - 1) / (days - 1):.1f},"
                f"{top + plot_h * (1 - max(0.0, min(100.0, p[field])) / 100):.1f}"
                for p in points
            )
            dash = ' stroke-dasharray="5 3"' if index else ""
            parts.append(f'<polyline points="{xy}" fill="none" stroke="{colour}" stroke-width="2.5"{dash}/>')
        parts.append(
            f'<rect x="{left + 8 + 200 * index}" y="{height - 12}" width="12" height="4" fill="{colour}"/>'
            f'<text x="{left + 24 + 200 * index}" y="{height - 6}" font-size="11">{_text(legend)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(title: str, groups: list[str], series: list[tuple[str, str, list[int]]]) -> str:
    """Grouped bars: one group per label, one bar per (label, colour, counts) series."""
    width, height, left, bottom, top = 480, 230, 34, 40, 40
    plot_w, plot_h = width - left - 10, height - bottom - top
    highest = max((n for _, _, counts in series for n in counts), default=0) or 1
    group_w = plot_w / max(len(groups), 1)
    bar_w = group_w * 0.8 / max(len(series), 1)
    parts = [
        f'<svg width="{width}" height="{height}" role="img" aria-label="{_text(title)}">'
        f'<rect width="{width}" height="{height}" fill="#fff"/>'
        f'<text x="{left}" y="16" font-size="13" font-weight="600">{_text(title)}</text>'
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#8c959f"/>'
    ]
    for g, group in enumerate(groups):
        x0 = left + g * group_w + group_w * 0.1
        parts.append(
            f'<text x="{x0 + group_w * 0.4:.1f}" y="{top + plot_h + 14}" font-size="11" '
            f'text-anchor="middle">{_text(group)}</text>'
        )
        for index, (_, colour, counts) in enumerate(series):
            bar_h = plot_h * counts[g] / highest
            x, y = x0 + index * bar_w, top + plot_h - bar_h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" height="{bar_h:.1f}" '
                f'fill="{colour}"/>'
                f'<text x="{x + bar_w / 2 - 1:.1f}" y="{y - 3:.1f}" font-size="10" '
                f'text-anchor="middle">{counts[g]}</text>'
            )
    for index, (legend, colour, _) in enumerate(series):
        parts.append(
            f'<rect x="{left + 8 + 150 * index}" y="{height - 14}" width="12" height="4" fill="{colour}"/>'
            f'<text x="{left + 24 + 150 * index}" y="{height - 8}" font-size="11">{_text(legend)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def coverage_grid(then: list[str], now: list[str]) -> str:
    """Seniority × function, marking cells engaged now, gained this quarter, or lost."""
    cells_then, cells_now = set(then), set(now)
    departments = sorted({c.split(":", 1)[1] for c in cells_then | cells_now})
    if not departments:
        return '<p class="muted">No engaged contacts at either date.</p>'
    head = "".join(f"<th>{_text(d)}</th>" for d in departments)
    body = []
    for level in (*SENIORITIES, "unknown"):
        row = []
        for d in departments:
            cell = f"{level}:{d}"
            if cell in cells_now and cell not in cells_then:
                row.append('<td class="cell-gained">gained</td>')
            elif cell in cells_now:
                row.append('<td class="cell-on">engaged</td>')
            elif cell in cells_then:
                row.append('<td class="cell-lost">lost</td>')
            else:
                row.append("<td></td>")
        body.append(f"<tr><th>{_text(level)}</th>{''.join(row)}</tr>")
    return f"<table><tr><th>seniority \\ function</th>{head}</tr>{''.join(body)}</table>"


def _document(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{NO_NETWORK}">'
        f"<title>{_text(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>\n"
    )


def _ended(alert: dict[str, Any]) -> str:
    return f"resolved {_text(alert['ended_at'][:10])}" if alert["status"] == "resolved" else "still open"


def _when(value: str, seconds: bool = False) -> str:
    return f'<span class="when">{_text(value[: 19 if seconds else 16].replace("T", " "))}</span>'


def _outcomes(moment: dict[str, Any]) -> str:
    evidence = moment["evidence"]
    lines = [
        f"{_text(label(e['outcome'], OUTCOMES))} ({e['points']:+.0f}) "
        f'<span class="muted">← event</span> <span class="id">{_text(e["event"])}</span>'
        for e in evidence
    ]
    if moment["direction"] == "inbound":
        lines.insert(0, "the buyer started this interaction")
    return "<br>".join(lines) or '<span class="muted">no response within the window</span>'


def _moment_rows(moments: list[dict[str, Any]], prefix: str) -> str:
    out = []
    for n, m in enumerate(moments):
        out.append(
            f'<tr><td><a href="#{prefix}-{n}">{_when(m["occurred_at"])}</a></td>'
            f"<td>{_text(label_interaction(m))}</td>"
            f"<td>{_text(people(m['sellers'], m['buyers'], m['direction']))}</td>"
            f'<td class="num">{m["score"]:.0f}</td>'
            f"<td>{_text(buyer_did(m['direction'], m['outcomes']))}</td></tr>"
        )
    return "".join(out)


def label_interaction(moment: dict[str, Any]) -> str:
    return happened(moment["channel"], moment["direction"], moment["kind"] or "", moment["status"] or "")


def _evidence(moments: list[dict[str, Any]], prefix: str) -> str:
    out = []
    for n, m in enumerate(moments):
        out.append(
            f'<tr id="{prefix}-{n}"><td>{_when(m["occurred_at"], seconds=True)} UTC</td>'
            f"<td>{_text(label_interaction(m))}<br>"
            f'<span class="muted">interaction</span> <span class="id">{_text(m["interaction_id"])}</span><br>'
            f'<span class="muted">source event</span> '
            f'<span class="id">{_text(m["source_event_id"])}</span></td>'
            f'<td class="id">{_text(", ".join(m["sellers"] or []))}</td>'
            f'<td class="id">{_text(", ".join(m["buyers"] or []))}</td>'
            f"<td>{_outcomes(m)}</td></tr>"
        )
    return "".join(out)


def account_page(review: dict[str, Any]) -> str:
    h = review["health"]
    quarter, before = review["quarter"], review["previous_quarter"]
    title = f"{review['name'] or review['account_id']}: relationship review {quarter}"
    start, end = _day(review["period"]["start"]), _day(review["period"]["end"])
    charts = "".join(
        line_chart(
            f"{name} through {quarter}",
            field,
            [
                (quarter, THIS_QUARTER, h["series"]),
                (f"{before}, same day of quarter", PREVIOUS_QUARTER, h["previous_series"]),
            ],
            start,
            (end - start).days + 1,
        )
        for name, field in (("Health", "score"), ("Depth", "depth"))
    )
    figures = (
        '<table class="figures"><tr><th></th><th>start</th><th>end</th>'
        f"<th>mean {_text(quarter)}</th><th>mean {_text(before)}</th></tr>"
        f'<tr><th>health</th><td class="num" id="health-start">{_num(h["start"]["score"])}</td>'
        f'<td class="num" id="health-end">{_num(h["end"]["score"])} '
        f"({_text(label(h['end']['tier'], TIER_LABELS))})</td>"
        f'<td class="num" id="health-mean">{_num(h["mean"], 1)}</td>'
        f'<td class="num" id="health-previous-mean">{_num(h["previous_mean"], 1)}</td></tr>'
        f'<tr><th>depth</th><td class="num">{_num(h["start"]["depth"])}</td>'
        f'<td class="num" id="depth-end">{_num(h["end"]["depth"])}</td>'
        f'<td class="num" id="depth-mean">{_num(h["mean_depth"], 1)}</td>'
        f'<td class="num">{_num(h["previous_mean_depth"], 1)}</td></tr></table>'
    )
    contacts = review["contacts"]
    prep = review["preparedness"]
    meetings = "".join(
        f'<tr><td>{_when(m["starts_at"])}</td><td class="id">{_text(m["seller"])}</td>'
        f'<td class="tag">{_text(m["status"])}</td><td class="num">{m["score"]:.0f}</td>'
        f'<td class="tag">{_text(label(m["tier"], TIER_LABELS))}</td>'
        f"<td>{_text(', '.join(label(x, PREPAREDNESS_SIGNALS) for x in m['missing']))}</td></tr>"
        for m in prep["meetings"]
    )
    missing = (
        ", ".join(f"{_text(label(s, PREPAREDNESS_SIGNALS))} ({n})" for s, n in prep["most_missing"])
        or "nothing"
    )
    alerts = "".join(
        f'<tr><td>{_when(a["raised_at"])}</td><td class="tag">{_text(label(a["kind"], ALERT_KINDS))}</td>'
        f'<td class="tag">{_text(a["severity"])}</td><td>{_text(a["reason"])} '
        f'<span class="id">{_text(a["subject"])}</span></td>'
        f'<td class="tag">{_ended(a)}</td></tr>'
        for a in review["alerts"]
    )
    actions = "".join(
        f'<li><strong>{_text(a["action"])}</strong> <span class="muted">gap: {_text(a["gap"])}'
        f"{' · evidence: ' + _text('; '.join(a['evidence'])) if a.get('evidence') else ''}</span></li>"
        for a in review["actions"]
    )
    body = f"""
<p><a href="index.html">← portfolio</a></p>
<h1>{_text(title)}</h1>
<p class="muted">{_text(review["account_id"])} · owner {_text(review["owner"] or "none")}
{(" (" + _text(review["team"]) + ")") if review.get("team") else ""} ·
{_text(review["period"]["start"])} to {_text(review["period"]["end"])} against {_text(before)}</p>
<h2>Recommended actions</h2>
<p class="muted">At most five, ranked by the health points at stake; each names its gap and evidence.</p>
<ol id="actions">{actions or "<li>No gaps found.</li>"}</ol>
<h2>Health and depth</h2>{figures}<div class="charts">{charts}</div>
<p>Weakest signal at quarter end: {_text(top_reason(h["end"]["top_reason"]) or "none")}</p>
<h2>Coverage: seniority × function</h2>
<p class="muted">Engaged cells on {_text(review["coverage"]["then_as_of"])} (then) and
{_text(review["coverage"]["now_as_of"])} (now).</p>
{coverage_grid(review["coverage"]["then"], review["coverage"]["now"])}
<h2>Contacts gained and lost</h2>
<p id="engaged">{contacts["engaged"]} engaged contact(s) at quarter end.</p>
{"" if contacts.get("complete", True) else PARTIAL}
<p>Gained: <span id="gained">{_text(", ".join(contacts["gained"]) or "none")}</span></p>
<p>Lost: <span id="lost">{_text(", ".join(contacts["lost"]) or "none")}</span></p>
<h2>Top value moments</h2>
<table><tr><th>when (evidence)</th><th>what happened</th><th>people</th><th>value</th>
<th>what the buyer did</th></tr>
{_moment_rows(review["top_moments"], "top")}</table>
<h2>Weakest interactions</h2>
<table><tr><th>when (evidence)</th><th>what happened</th><th>people</th><th>value</th>
<th>what the buyer did</th></tr>
{_moment_rows(review["weakest"], "weak")}</table>
<h2>Preparedness</h2>
<p id="preparedness">{len(prep["meetings"])} meeting(s), mean preparedness {_num(prep["mean"], 1)}
({_text(before)}: {_num(prep["previous_mean"], 1)});
most often missing: {missing}</p>
<table><tr><th>starts</th><th>seller</th><th>status</th><th>score</th><th>tier</th><th>missing</th></tr>{meetings}</table>
<h2>Alerts raised</h2>
<p id="alert-count">{len(review["alerts"])} alert(s) raised in {_text(quarter)}.</p>
<table><tr><th>raised</th><th>kind</th><th>severity</th><th>reason</th>
<th>how it ended</th></tr>{alerts}</table>
<h2>Evidence</h2>
<table><tr><th>time</th><th>interaction</th><th>sellers</th><th>buyers</th>
<th>what the buyer did (outcome → event)</th></tr>
{_evidence(review["top_moments"], "top")}{_evidence(review["weakest"], "weak")}</table>
"""
    return _document(title, body)


def owner_page_name(owner: str) -> str:
    return "owner-" + page_name(owner or "no owner")


def index_page(quarter: str, lines: list[dict[str, Any]], owner: str | None = None) -> str:
    """The portfolio (or one owner's part of it): tiers then and now, owners with their teams,
    and one line per account linking to its page, weakest health first."""
    rows = "".join(
        f'<tr><td><a href="{_text(page_name(p["account_id"]))}">'
        f"{_text(p['name'] or p['account_id'])}</a></td>"
        f'<td class="tag">{_text(p["account_id"])}</td>'
        f'<td class="tag"><a href="{_text(owner_page_name(p.get("owner", "")))}">'
        f"{_text(p.get('owner') or 'none')}</a></td>"
        f"<td>{_text(p.get('team') or '')}</td>"
        f'<td class="num">{p["score"]:.0f}</td><td class="tag">{_text(label(p["tier"], TIER_LABELS))}</td>'
        f'<td class="num">{_change(p["change"])}</td>'
        f'<td class="num">{p["depth"]:.0f}</td><td class="num">{p["meetings"]}</td>'
        f'<td class="num">{_num(p["preparedness"])}</td><td class="num">{p["alerts"]}</td>'
        f'<td class="num">{p["actions"]}</td></tr>'
        for p in lines
    )
    title = f"Relationship reviews {quarter}" + (f": {owner or 'no owner'}" if owner is not None else "")
    tiers = bar_chart(
        "Accounts by tier",
        [label(t, TIER_LABELS) for t in TIERS],
        [
            (
                "previous quarter end",
                PREVIOUS_QUARTER,
                [sum(p["tier_then"] == t for p in lines) for t in TIERS],
            ),
            (f"{quarter} end", THIS_QUARTER, [sum(p["tier"] == t for p in lines) for t in TIERS]),
        ],
    )
    owners: dict[str, list[dict[str, Any]]] = {}
    for p in lines:
        owners.setdefault(p.get("owner") or "", []).append(p)
    by_owner = "".join(
        f'<tr><td><a href="{_text(owner_page_name(o))}">{_text(o or "no owner")}</a></td>'
        f'<td>{_text(mine[0].get("team") or "")}</td><td class="num">{len(mine)}</td>'
        f'<td class="num">{sum(p["tier"] in ("at_risk", "disengaged") for p in mine)}</td>'
        f'<td class="num">{sum(p["actions"] for p in mine)}</td></tr>'
        for o, mine in sorted(owners.items(), key=lambda item: (item[0] == "", item[0].lower()))
    )
    owners_table = (
        "<h2>By owner</h2><table><tr><th>owner</th><th>team</th><th>accounts</th>"
        f"<th>at risk or disengaged</th><th>actions</th></tr>{by_owner}</table>"
        if owner is None
        else '<p><a href="index.html">← portfolio</a></p>'
    )
    body = (
        f'<h1>{_text(title)}</h1><div class="charts">{tiers}</div>{owners_table}'
        f'<h2>Accounts</h2><p class="muted">{len(lines)} account(s), weakest health first; health at '
        "quarter end, change of the quarter's mean health against the previous quarter.</p>"
        "<table><tr><th>account</th><th>id</th><th>owner</th><th>team</th>"
        "<th>health</th><th>tier</th><th>change</th><th>depth</th><th>meetings</th><th>preparedness</th>"
        f"<th>alerts</th><th>actions</th></tr>{rows}</table>"
    )
    return _document(title, body)


def write_review(
    out: Path, quarter: str, reviews: list[dict[str, Any]], lines: list[dict[str, Any]]
) -> list[Path]:
    """Account pages, one page per owner, then ``index.html``; returns the index first."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for review in reviews:
        path = out / page_name(review["account_id"])
        path.write_text(account_page(review), encoding="utf-8")
        written.append(path)
    owners: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        owners.setdefault(line.get("owner") or "", []).append(line)
    for owner, mine in owners.items():
        path = out / owner_page_name(owner)
        path.write_text(index_page(quarter, mine, owner), encoding="utf-8")
        written.append(path)
    index = out / "index.html"
    index.write_text(index_page(quarter, lines), encoding="utf-8")
    return [index, *written]
