"""`rapport audit`: the evidence per organisation, as a table or JSON, and a clear error without a seller."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

from streams.cli import main
from streams.sources.dataset import write_dataset
from streams.sources.synthetic import SELLER_DOMAIN, generate


def dataset(tmp_path: Path) -> Path:
    events, labels = generate(3, seed=2, days=60, dirty=True)
    write_dataset(tmp_path, events, labels)
    return tmp_path


def test_audit_prints_json_with_every_organisations_evidence(tmp_path: Path) -> None:
    folder = dataset(tmp_path)
    result = CliRunner().invoke(main, ["audit", str(folder), "--seller-domain", SELLER_DOMAIN, "--json"])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.output.strip().splitlines()[-1])
    rows = {a["organisation"]: a for a in report["accounts"]}
    quiet = rows["quietco-partners.com"]
    assert quiet["relationship"] and quiet["inbound"] > 0 and quiet["outbound"] > 0
    assert quiet["buyer_count"] == 1 and quiet["seller_count"] == 1 and quiet["first_exchange"]
    assert rows["coldlead-industries.com"]["reason"] == "one-way inbound"
    assert report["summary"]["duplicates"] > 0 and report["summary"]["relationships"]["organisations"] == len(
        rows
    )


def test_audit_renders_a_table_and_requires_a_seller_domain(tmp_path: Path) -> None:
    folder = dataset(tmp_path)
    runner = CliRunner(env={"RAPPORT_SELLER_DOMAINS": "", "COLUMNS": "200"})
    shown = runner.invoke(main, ["audit", str(folder), "--seller-domain", SELLER_DOMAIN])
    assert shown.exit_code == 0, shown.output
    assert (
        "quietco-partners.com" in shown.output
        and "suggested seller domain demo-seller-energy.com" in shown.output
    )
    missing = runner.invoke(main, ["audit", str(folder)])
    assert missing.exit_code == 2 and "--seller-domain" in missing.output
