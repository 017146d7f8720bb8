from pathlib import Path

import pytest

from streams.config import ConfigError, Settings


def test_defaults_run_embedded(tmp_path: Path) -> None:
    s = Settings.from_env({"RAPPORT_HOME": str(tmp_path)})
    assert s.kafka_bootstrap is None
    assert s.warehouse_url == f"chdb://{tmp_path / 'warehouse'}"
    assert s.partitions == 4
    assert s.seller_domains == ()


def test_default_home_is_dot_rapport() -> None:
    assert Settings.from_env({}).home == Path(".rapport").resolve()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RAPPORT_KAFKA_BOOTSTRAP", "localhost"),
        ("RAPPORT_KAFKA_BOOTSTRAP", "host:port"),
        ("RAPPORT_WAREHOUSE_URL", "postgres://x"),
        ("RAPPORT_WAREHOUSE_URL", "chdb://"),
        ("RAPPORT_PARTITIONS", "zero"),
        ("RAPPORT_PARTITIONS", "0"),
        ("RAPPORT_SELLER_DOMAINS", "not a domain"),
        ("RAPPORT_SINK_BATCH_SECONDS", "-1"),
    ],
)
def test_wrong_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env({name: value})
    assert name in str(error.value)
    assert "expected" in str(error.value)


def test_server_url_and_bootstrap_are_kept() -> None:
    s = Settings.from_env(
        {"RAPPORT_KAFKA_BOOTSTRAP": "kafka://k1:9092,k2:9092", "RAPPORT_WAREHOUSE_URL": "http://ch:8123"}
    )
    assert s.kafka_bootstrap == "k1:9092,k2:9092"
    assert s.warehouse_url == "http://ch:8123"
    # a real cluster keeps faust's safer group timeouts
    assert s.broker_session_timeout_s == 60.0


def test_seller_domains_merge_and_roundtrip_through_env(tmp_path: Path) -> None:
    s = Settings.from_env({"RAPPORT_HOME": str(tmp_path), "RAPPORT_SELLER_DOMAINS": "A.com, b.com"})
    s = s.with_seller_domains(["c.com", "a.com"])
    assert s.seller_domains == ("a.com", "b.com", "c.com")
    assert Settings.from_env(s.as_env()) == s
