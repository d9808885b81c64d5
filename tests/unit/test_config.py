"""Typed configuration: EVENTSTRATA_* parsing, defaults, validation messages naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventstrata.config import FIELDS, ConfigError, Settings, format_duration_ms, parse_duration_ms


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("250ms", 250),
        ("60s", 60_000),
        ("90m", 5_400_000),
        ("36h", 129_600_000),
        ("7d", 604_800_000),
        (" 1h ", 3_600_000),
    ],
)
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "10", "0s", "1w", "-5m", "1.5h", "h", "5 minutes"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration_ms(text)


@pytest.mark.parametrize("ms", [250, 1000, 60_000, 5_400_000, 86_400_000, 90_061_001])
def test_format_duration_roundtrip(ms: int) -> None:
    assert parse_duration_ms(format_duration_ms(ms)) == ms


def test_defaults_from_empty_env() -> None:
    s = Settings.from_env(env={})
    assert s.kafka_bootstrap == ""
    assert s.topic == "events.raw"
    assert s.dlq_topic == "events.dlq"
    assert s.redis_url == ""
    assert s.hot_retention_ms == 7 * 86_400_000
    assert s.window_ms == 3_600_000
    assert s.archive_interval_ms == 60_000
    assert s.api_port == 8080
    assert s.state_dir == Path(".eventstrata")
    assert s.archive_uri == ".eventstrata/archive"


def test_every_field_has_matching_attribute_and_documented_default() -> None:
    defaults = Settings.from_env(env={})
    for f in FIELDS:
        assert f.env.startswith("EVENTSTRATA_")
        assert hasattr(defaults, f.attr), f.env
        assert f.help


def test_env_values_are_parsed() -> None:
    env = {
        "EVENTSTRATA_KAFKA_BOOTSTRAP": "127.0.0.1:9092",
        "EVENTSTRATA_REDIS_URL": "redis://127.0.0.1:6379/0",
        "EVENTSTRATA_HOT_RETENTION": "36h",
        "EVENTSTRATA_WINDOW": "15m",
        "EVENTSTRATA_API_PORT": "0",
        "EVENTSTRATA_REDIS_CLUSTER": "yes",
        "EVENTSTRATA_DLQ_MAX_RATIO": "0.25",
        "EVENTSTRATA_STATE_DIR": "/tmp/x",
    }
    s = Settings.from_env(env=env)
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.hot_retention_ms == 36 * 3_600_000
    assert s.window_ms == 15 * 60_000
    assert s.api_port == 0
    assert s.redis_cluster is True
    assert s.dlq_max_ratio == 0.25
    assert s.state_dir == Path("/tmp/x")


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("EVENTSTRATA_WINDOW", "7x"),
        ("EVENTSTRATA_API_PORT", "eighty"),
        ("EVENTSTRATA_REDIS_CLUSTER", "maybe"),
        ("EVENTSTRATA_HOT_RETENTION", "0d"),
        ("EVENTSTRATA_DLQ_MAX_RATIO", "lots"),
    ],
)
def test_bad_value_names_the_variable(var: str, value: str) -> None:
    with pytest.raises(ConfigError, match=var):
        Settings.from_env(env={var: value})


@pytest.mark.parametrize(
    ("env", "var"),
    [
        ({"EVENTSTRATA_WINDOW": "7h"}, "EVENTSTRATA_WINDOW"),
        ({"EVENTSTRATA_WINDOW": "2h", "EVENTSTRATA_HOT_RETENTION": "1h"}, "EVENTSTRATA_HOT_RETENTION"),
        ({"EVENTSTRATA_API_PORT": "70000"}, "EVENTSTRATA_API_PORT"),
        ({"EVENTSTRATA_KEY_PREFIX": "bad prefix"}, "EVENTSTRATA_KEY_PREFIX"),
        ({"EVENTSTRATA_DLQ_MAX_RATIO": "0"}, "EVENTSTRATA_DLQ_MAX_RATIO"),
        ({"EVENTSTRATA_HOT_SHARDS": "0"}, "EVENTSTRATA_HOT_SHARDS"),
        ({"EVENTSTRATA_HOT_SHARDS": "65"}, "EVENTSTRATA_HOT_SHARDS"),
    ],
)
def test_cross_field_validation(env: dict[str, str], var: str) -> None:
    with pytest.raises(ConfigError, match=var):
        Settings.from_env(env=env)


def test_the_layout_carries_prefix_and_shards() -> None:
    lay = Settings.from_env(env={"EVENTSTRATA_HOT_SHARDS": "4", "EVENTSTRATA_KEY_PREFIX": "p"}).layout()
    assert (lay.prefix, lay.shards) == ("p", 4)
    assert Settings.from_env(env={}).layout().shards == 1


def test_overrides_win_over_env() -> None:
    s = Settings.from_env(env={"EVENTSTRATA_TOPIC": "a"}, topic="b")
    assert s.topic == "b"


def test_to_env_roundtrip() -> None:
    s = Settings.from_env(
        env={},
        kafka_bootstrap="h:1",
        redis_url="redis://h:2/0",
        window_ms=900_000,
        redis_cluster=True,
        api_port=0,
        state_dir=Path("/tmp/st"),
    )
    env = s.to_env()
    assert env["EVENTSTRATA_WINDOW"] == "15m"
    assert env["EVENTSTRATA_REDIS_CLUSTER"] == "true"
    assert Settings.from_env(env=env) == s


def test_the_default_archive_lives_under_the_state_dir() -> None:
    """A fresh state dir never serves an old archive from the working directory."""
    assert Settings.from_env(env={"EVENTSTRATA_STATE_DIR": "/srv/es"}).archive_uri == "/srv/es/archive"
    assert Settings.from_env(env={}).archive_uri == ".eventstrata/archive"
    given = Settings.from_env(env={"EVENTSTRATA_STATE_DIR": "/srv/es", "EVENTSTRATA_ARCHIVE_URI": "/data/arch"})
    assert given.archive_uri == "/data/arch"
    # what `dev up` passes to its children names the resolved directory
    assert Settings.from_env(env={"EVENTSTRATA_STATE_DIR": "/srv/es"}).to_env()["EVENTSTRATA_ARCHIVE_URI"] == \
        "/srv/es/archive"


def test_fields_are_the_settings_fields_and_their_defaults_parse_to_the_attribute_defaults() -> None:
    import dataclasses

    assert [f.attr for f in FIELDS] == [f.name for f in dataclasses.fields(Settings)]
    assert Settings() == Settings.from_env(env={})  # each attribute default is its variable's default


def test_the_api_url_and_key_of_command_line_clients() -> None:
    from eventstrata.config import api_key, api_url

    assert api_url({"EVENTSTRATA_API_URL": "http://h:1"}) == "http://h:1"
    assert api_url({"EVENTSTRATA_API_HOST": "0.0.0.0", "EVENTSTRATA_API_PORT": "9"}) == "http://0.0.0.0:9"
    assert api_url({"EVENTSTRATA_API_PORT": "0"}) == "http://127.0.0.1:8080"
    assert api_url({"EVENTSTRATA_API_HOST": "h", "EVENTSTRATA_API_PORT": "eighty"}) == "http://127.0.0.1:8080"
    assert api_key({"EVENTSTRATA_API_KEY": "k"}) == "k"
    assert api_key({"EVENTSTRATA_API_KEY": ""}) is None and api_key({}) is None


def test_fill_unset_settings_never_overrides_a_set_variable() -> None:
    from eventstrata.config import fill_unset_settings

    env = {"EVENTSTRATA_REDIS_URL": "redis://mine", "EVENTSTRATA_TOPIC": ""}
    fill_unset_settings({"redis_url": "redis://other", "kafka_bootstrap": "k:1", "topic": "t",
                         "dlq_topic": None}, env)
    assert env == {"EVENTSTRATA_REDIS_URL": "redis://mine", "EVENTSTRATA_KAFKA_BOOTSTRAP": "k:1",
                   "EVENTSTRATA_TOPIC": "t"}
    with pytest.raises(KeyError):
        fill_unset_settings({"no_such_setting": "x"}, env)


def test_child_env_and_cache_root_read_this_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from eventstrata.config import cache_root, child_env

    monkeypatch.setenv("ES_TEST_INHERITED", "1")
    env = child_env({"EVENTSTRATA_TOPIC": "x"})
    assert env["ES_TEST_INHERITED"] == "1" and env["EVENTSTRATA_TOPIC"] == "x"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_root() == tmp_path / "eventstrata"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == Path.home() / ".cache" / "eventstrata"


def test_settings_refuse_inconsistent_security() -> None:
    for env in ({"EVENTSTRATA_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
                {"EVENTSTRATA_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "EVENTSTRATA_KAFKA_SASL_MECHANISM": "GSSAPI",
                 "EVENTSTRATA_KAFKA_USERNAME": "u", "EVENTSTRATA_KAFKA_PASSWORD": "p"},
                {"EVENTSTRATA_KAFKA_TLS_CA": "/ca.pem"},
                {"EVENTSTRATA_KAFKA_SECURITY_PROTOCOL": "TLS"}):
        with pytest.raises(ConfigError):
            Settings.from_env(env=env)
