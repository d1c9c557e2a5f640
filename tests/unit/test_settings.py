from pathlib import Path

import pytest

from eventpipe.settings import SECRET_FIELDS, Settings, SettingsError, setting_names


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.http_port == 8080
    assert settings.kafka_idempotence is False
    assert settings.embedded_clickhouse
    assert settings.resolved_clickhouse_dsn.endswith("/data/clickhouse")
    # CVAT's export writes cells as they are.
    assert settings.csv_neutralize_formulas is False


def test_environment_values_are_typed() -> None:
    settings = Settings.from_env(
        {
            "EVENTPIPE_HTTP_PORT": "9000",
            "EVENTPIPE_KAFKA_IDEMPOTENCE": "yes",
            "EVENTPIPE_BATCH_MAX_SECONDS": "0.25",
            "EVENTPIPE_DATA_DIR": "/srv/eventpipe",
            "EVENTPIPE_CLICKHOUSE_DSN": "http://ch:8123",
        }
    )
    assert settings.http_port == 9000
    assert settings.kafka_idempotence is True
    assert settings.batch_max_seconds == 0.25
    assert settings.data_dir == Path("/srv/eventpipe")
    assert not settings.embedded_clickhouse


def test_flags_override_environment_but_none_does_not() -> None:
    settings = Settings.from_env({"EVENTPIPE_HTTP_PORT": "9000"}, http_port=7000, http_host=None)
    assert settings.http_port == 7000
    assert settings.http_host == "127.0.0.1"


@pytest.mark.parametrize(
    ("name", "value"),
    [("EVENTPIPE_HTTP_PORT", "eighty"), ("EVENTPIPE_S3_SECURE", "maybe")],
)
def test_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_child_environment_round_trips() -> None:
    original = Settings(http_port=1234, kafka_idempotence=True, s3_secret_key="s3cr3t")
    assert Settings.from_env(original.to_env()) == original
    assert set(original.to_env()) == setting_names()


def test_redacted_hides_secrets() -> None:
    settings = Settings(s3_secret_key="s3cr3t", clickhouse_dsn="http://u:pw@ch:8123")
    shown = settings.redacted()
    assert "s3cr3t" not in shown.values()
    assert shown["EVENTPIPE_S3_SECRET_KEY"] == "***"
    assert shown["EVENTPIPE_CLICKHOUSE_DSN"] == "***"
    assert shown["EVENTPIPE_HTTP_PORT"] == "8080"


@pytest.mark.parametrize(
    ("value", "codec"), [("lz4", "lz4"), ("ZSTD", "zstd"), ("none", None), (" gzip ", "gzip")]
)
def test_kafka_compression_maps_to_the_client_codec(value: str, codec: str | None) -> None:
    settings = Settings.from_env({"EVENTPIPE_KAFKA_COMPRESSION": value})
    assert settings.kafka_compression_type == codec


def test_an_unknown_kafka_compression_names_the_variable_and_the_choices() -> None:
    with pytest.raises(SettingsError, match=r"EVENTPIPE_KAFKA_COMPRESSION='brotli'.*lz4, zstd"):
        Settings.from_env({"EVENTPIPE_KAFKA_COMPRESSION": "brotli"})


@pytest.mark.parametrize(
    ("variable", "value", "choices"),
    [
        ("EVENTPIPE_LOG_FORMAT", "xml", "text, json"),
        ("EVENTPIPE_LOG_LEVEL", "loud", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("EVENTPIPE_RATE_LIMIT_REDIS_FAILURE", "sometimes", "open, closed"),
    ],
)
def test_a_word_outside_a_settings_choices_is_refused_naming_them(
    variable: str, value: str, choices: str
) -> None:
    expected = f"{variable}='{value}' is not one of {choices}"
    with pytest.raises(SettingsError) as from_env:
        Settings.from_env({variable: value})
    assert str(from_env.value) == expected
    # Settings built in code (or changed by a command-line flag) are held to the same words.
    with pytest.raises(SettingsError) as built:
        Settings().with_overrides(**{variable.removeprefix("EVENTPIPE_").lower(): value})
    assert str(built.value) == expected


def test_a_choice_is_read_whatever_its_case_and_stored_as_documented() -> None:
    settings = Settings.from_env({"EVENTPIPE_LOG_LEVEL": " debug", "EVENTPIPE_LOG_FORMAT": "JSON"})
    assert (settings.log_level, settings.log_format) == ("DEBUG", "json")


@pytest.mark.parametrize(
    ("value", "expected"), [("Off", False), ("no", False), ("ON", True), ("1", True)]
)
def test_boolean_words(value: str, expected: bool) -> None:
    assert Settings.from_env({"EVENTPIPE_S3_SECURE": value}).s3_secure is expected


def test_a_bad_value_says_what_was_expected() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"EVENTPIPE_BATCH_MAX_SECONDS": "soon"})
    assert str(raised.value) == (
        "EVENTPIPE_BATCH_MAX_SECONDS='soon' is not valid: Expected `float`, got `str`"
    )


def test_repr_shows_no_secret() -> None:
    """A traceback's locals or a debug log print settings with repr()."""
    secrets = {name: f"secret-{name}" for name in SECRET_FIELDS}
    shown = repr(Settings(**secrets))
    assert [value for value in secrets.values() if value in shown] == []


def test_every_credential_is_a_secret() -> None:
    assert {
        "clickhouse_dsn",
        "jwt_hs256_secret",
        "s3_secret_key",
        "identity_dsn",
        "rate_limit_redis_url",
        "intake_password",
    } == SECRET_FIELDS
