"""docker-compose.yml: every mounted path and referenced file exists, and the worker's
environment points at the compose services (no Docker here, so the file is checked as data)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import yaml

from streams.boards import provisioning

REPO = Path(__file__).parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_every_bind_mount_and_build_context_exists():
    mounts = 0
    for name, service in SERVICES.items():
        build = service.get("build")
        if build:
            context = REPO / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            assert (context / dockerfile).is_file(), f"{name}: {context / dockerfile} is missing"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                mounts += 1
                assert (REPO / source).exists(), f"{name} mounts {source}, which does not exist"
            else:
                assert source in COMPOSE.get("volumes", {}), f"{name}: named volume {source} is not declared"
    assert mounts >= 3


def test_grafana_reads_the_generated_provisioning():
    grafana = SERVICES["grafana"]
    targets = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    assert targets["/etc/grafana/provisioning"] == "./dashboards/provisioning"
    assert targets[provisioning.GRAFANA_DASHBOARDS_PATH] == "./dashboards/json"
    assert "grafana-clickhouse-datasource" in grafana["environment"]["GF_INSTALL_PLUGINS"]
    # the datasource host is the clickhouse service, which mounts the read-only user
    assert provisioning.datasource()["jsonData"]["host"] in SERVICES
    clickhouse_targets = [v.split(":")[1] for v in SERVICES["clickhouse"]["volumes"]]
    assert any(t.startswith("/etc/clickhouse-server/users.d/") for t in clickhouse_targets)
    reader = (REPO / "dashboards/clickhouse/users.d/grafana_reader.xml").read_text()
    assert f"<{provisioning.READER_USER}>" in reader and "<readonly>1</readonly>" in reader


def test_worker_and_init_point_at_the_compose_services():
    for name in ("rapport-worker", "rapport-init"):
        env = SERVICES[name]["environment"]
        host, _, port = env["RAPPORT_KAFKA_BOOTSTRAP"].partition(":")
        assert host in SERVICES, f"{name}: Kafka host {host} is not a service"
        assert f"//{host}:{port}" in SERVICES[host]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
        warehouse = urlparse(env["RAPPORT_WAREHOUSE_URL"].replace("${", "").replace("}", ""))
        assert warehouse.hostname in SERVICES and warehouse.port == 8123
    assert SERVICES["rapport-init"]["command"] == ["warehouse", "migrate"]
    worker_waits_for = SERVICES["rapport-worker"]["depends_on"]["rapport-init"]["condition"]
    assert worker_waits_for == "service_completed_successfully"


def test_credentials_come_from_the_environment_and_are_documented():
    text = (REPO / "docker-compose.yml").read_text()
    referenced = set(re.findall(r"\$\{(\w+)", text))
    example = {line.split("=")[0] for line in (REPO / ".env.example").read_text().splitlines() if "=" in line}
    assert referenced <= example, f"document {sorted(referenced - example)} in .env.example"
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            if "PASSWORD" in key:
                assert str(value).startswith("${"), f"{name}: {key} is written into docker-compose.yml"
