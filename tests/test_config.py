import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.config import ConfigError, Settings, redact_logs, redacted


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


# --- one redaction for every URL printed or logged (issue 18, row 12) ---------------------------

password_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=30
)
names = st.from_regex(r"[a-z][a-z0-9_.-]{0,15}", fullmatch=True)


@given(
    st.sampled_from(["http", "https", "clickhouse", "kafka"]),
    names,
    password_text | st.sampled_from(["pa/ss", "p@ss:word", "a/b@c:d/", "::@@//"]),
    names,
    st.sampled_from(["", ":8123", ":8443/rapport", "/db?secure=1"]),
    st.sampled_from(["{}", "cannot open warehouse {}: refused", "url='{}', retry", "{} and {}"]),
)
def test_a_password_never_survives_redaction(
    scheme: str, user: str, password: str, host: str, tail: str, message: str
) -> None:
    url = f"{scheme}://{user}:{password}@{host}{tail}"
    out = redacted(message.format(url, url))
    assert out == message.format(*[f"{scheme}://{user}:***@{host}{tail}"] * 2)


@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=3, max_size=20)
    .map(lambda p: p[:1] + " \t" + p[1:])
    .filter(lambda p: p.strip() == p),
    st.sampled_from(["{}", "cannot open warehouse {}: refused", "url='{}', retry"]),
)
def test_a_configured_password_with_spaces_or_tabs_never_survives(password: str, message: str) -> None:
    """A space or a tab ends a URL in free text, so the configured password goes by value."""
    url = f"http://rapport:{password}@ch.internal:8123"
    Settings.from_env({"RAPPORT_WAREHOUSE_URL": url, "RAPPORT_HOME": "/tmp/rapport-test-home"})
    out = redacted(message.format(url))
    assert password not in out and "ch.internal:8123" in out


def test_query_string_credentials_are_redacted() -> None:
    text = "POST https://hooks.example/x?token=abc123&room=sales failed; http://h/q?Password=s3cr3t"
    assert (
        redacted(text) == "POST https://hooks.example/x?token=***&room=sales failed; http://h/q?Password=***"
    )


def test_urls_without_a_password_are_unchanged() -> None:
    for text in ["chdb:///var/lib/rapport/warehouse", "http://host:8123/x", "see http://h/a@b for more"]:
        assert redacted(text) == text


def test_connection_errors_and_logs_never_show_the_password(caplog: pytest.LogCaptureFixture) -> None:
    from streams.sinks.warehouse import WarehouseError, connect

    password = "s3cret/pw@x:y"
    url = f"http://rapport:{password}@127.0.0.1:9"
    with pytest.raises(WarehouseError) as failure:
        connect(url)
    assert "s3cret" not in str(failure.value) and "rapport:***@127.0.0.1:9" in str(failure.value)
    redact_logs()
    try:
        logging.getLogger("streams.test").warning("worker could not reach %s", url)
        try:
            raise RuntimeError(f"boom at {url}")
        except RuntimeError:
            logging.getLogger("streams.test").exception("failed")
    finally:
        logging.setLogRecordFactory(logging.LogRecord)
    assert caplog.records and "s3cret" not in caplog.text and "***" in caplog.text
