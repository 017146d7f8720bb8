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


# --- production defaults (issue 18, row 14) ------------------------------------------------------


def resolved(value: str) -> str:
    """``${NAME:-default}`` references replaced by their defaults, as compose does when unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def test_every_published_port_binds_localhost_unless_opted_in():
    published = [(name, str(p)) for name, s in SERVICES.items() for p in s.get("ports", [])]
    assert {name for name, _ in published} == {"kafka", "clickhouse", "grafana"}
    own = {"kafka": "KAFKA", "clickhouse": "CLICKHOUSE", "grafana": "GRAFANA"}
    for name, port in published:  # one variable per service: opening Grafana opens nothing else
        assert port.startswith(f"${{RAPPORT_{own[name]}_ADDRESS:-127.0.0.1}}:"), f"{name} publishes {port}"
        host, _container = resolved(port).rsplit(":", 1)[0].split(":")
        assert host == "127.0.0.1"


def test_kafka_is_documented_internal_only():
    listeners = SERVICES["kafka"]["environment"]["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    unauthenticated = "PLAINTEXT" in listeners and "SASL" not in listeners
    text = (REPO / "docker-compose.yml").read_text() + (REPO / "README.md").read_text()
    assert unauthenticated and text.count("INTERNAL-ONLY") >= 2, "say where Kafka may be reached"
    assert "grafana" not in {n for n, s in SERVICES.items() if "pipeline" in s.get("networks", [])}


def test_images_and_the_plugin_are_pinned_and_the_image_runs_as_a_user():
    for name, service in SERVICES.items():
        if "image" in service:
            assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+(\.\d+)?", service["image"]), (
                f"{name}: {service['image']}"
            )
    dockerfile = (REPO / "Dockerfile").read_text()
    (base,) = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), base
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    assert re.fullmatch(
        r"grafana-clickhouse-datasource \d+\.\d+\.\d+",
        SERVICES["grafana"]["environment"]["GF_INSTALL_PLUGINS"],
    )


def test_the_grafana_user_is_bounded_and_reachable_from_grafana_only():
    import xml.etree.ElementTree as ET

    root = ET.parse(REPO / "dashboards/clickhouse/users.d/grafana_reader.xml").getroot()
    user = root.find(f"users/{provisioning.READER_USER}")
    assert user is not None
    networks = [(n.tag, n.text) for n in user.find("networks") or []]
    assert networks == [("host", "grafana")] and "grafana" in SERVICES
    assert set(SERVICES["grafana"]["networks"]) <= set(SERVICES["clickhouse"]["networks"])
    profile = root.find(f"profiles/{user.findtext('profile')}")
    assert profile is not None and profile.findtext("readonly") == "1"
    limit = int(profile.findtext("max_execution_time") or 0)
    ceiling = profile.find("constraints/max_execution_time")
    assert (
        0 < limit <= int(ceiling.findtext("max")) <= 300
        and ceiling.find("changeable_in_readonly") is not None
    )
    assert 0 < int(profile.findtext("max_memory_usage") or 0) <= 8_000_000_000
    assert profile.find("constraints/max_memory_usage/const") is not None
    # what the plugin's client asks for (its query timeout + 5 s) is within the ceiling
    timeout = int(provisioning.datasource()["jsonData"].get("queryTimeout", "60"))
    assert timeout + provisioning.DRIVER_DEADLINE_MARGIN_S <= int(ceiling.findtext("max"))


def test_the_grafana_user_reads_what_the_boards_read_and_no_dead_letter_originals():
    import xml.etree.ElementTree as ET

    root = ET.parse(REPO / "dashboards/clickhouse/users.d/grafana_reader.xml").getroot()
    grants = [q.text or "" for q in root.findall(f"users/{provisioning.READER_USER}/grants/query")]
    whole = {g.rsplit(".", 1)[1] for g in grants if re.fullmatch(r"GRANT SELECT ON rapport\.[a-z_]+", g)}
    partial = {
        m.group(2): {c.strip() for c in m.group(1).split(",")}
        for g in grants
        if (m := re.fullmatch(r"GRANT SELECT\(([^)]*)\) ON rapport\.([a-z_]+)", g))
    }
    assert len(whole) + len(partial) == len(grants), grants  # nothing broader (no rapport.*)
    read = set()
    for path in (REPO / "dashboards").rglob("*"):
        if path.suffix in (".json", ".yaml"):
            read |= set(re.findall(r"(?:FROM|JOIN)\s+(?:rapport\.)?([a-z_]+)", path.read_text()))
    assert read <= whole | set(partial), read - whole - set(partial)
    assert "original" not in partial["rejected_events"] and "rejected_events" not in whole
