import os
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from tracker.config import DEFAULT_SECRET_KEY, Settings, _secrets_from_files
from tracker.runtime.broker import transport_options


@pytest.fixture(autouse=True)
def no_tracker_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test states its own settings; the caller's TRACKER_* variables must not leak in."""
    for name in [n for n in os.environ if n.startswith("TRACKER_")]:
        monkeypatch.delenv(name)


def test_development_mode_accepts_the_default_secret_and_embedded_services() -> None:
    s = Settings()
    assert s.embedded
    assert s.secret_key.get_secret_value() == DEFAULT_SECRET_KEY


def test_production_mode_refuses_the_default_secret_key() -> None:
    with pytest.raises(ValidationError, match="built-in development key"):
        Settings(
            environment="production",
            database_url=SecretStr("postgresql://x/y"),
            broker_url=SecretStr("redis://x"),
        )


def test_production_mode_refuses_missing_service_urls() -> None:
    with pytest.raises(ValidationError, match="must be set"):
        Settings(environment="production", secret_key=SecretStr("k" * 40))


def test_masked_settings_never_show_secrets() -> None:
    s = Settings(
        secret_key=SecretStr("top-secret-value-123"),
        database_url=SecretStr("postgresql://u:pw@h/db"),
        smtp_password=SecretStr("mail-password"),
    )
    shown = str(s.masked())
    for secret in ("top-secret-value-123", "pw@h", "mail-password"):
        assert secret not in shown
    assert s.masked()["secret_key"] == "***"


def test_settings_come_from_tracker_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKER_WEB_PORT", "9123")
    monkeypatch.setenv("TRACKER_FETCH_ALLOW_NETWORKS", '["127.0.0.1/32"]')
    s = Settings()
    assert s.web_port == 9123
    assert s.fetch_allow_networks == ["127.0.0.1/32"]


def test_an_invalid_value_is_a_clear_validation_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKER_FETCH_TIMEOUT_S", "-1")
    with pytest.raises(ValidationError, match="fetch_timeout_s"):
        Settings()


def test_a_rejected_secret_is_not_echoed_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKER_ENVIRONMENT", "production")
    monkeypatch.setenv("TRACKER_SECRET_KEY", "short-secret-XYZ")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert "short-secret-XYZ" not in str(caught.value)


def test_secrets_can_be_read_from_files(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "key"
    secret.write_text("from-a-file-secret\n")
    monkeypatch.setenv("TRACKER_SECRET_KEY_FILE", str(secret))
    s = Settings(**_secrets_from_files())  # type: ignore[arg-type]
    assert s.secret_key.get_secret_value() == "from-a-file-secret"


def test_an_unreadable_secret_file_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKER_SMTP_PASSWORD_FILE", "/nonexistent/secret")
    with pytest.raises(ValueError, match="TRACKER_SMTP_PASSWORD_FILE"):
        _secrets_from_files()


# --- operations settings -----------------------------------------------------------------------


def test_broker_transport_options_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert transport_options(Settings()) == {"visibility_timeout": 3600}
    monkeypatch.setenv("TRACKER_BROKER_URL", "sentinel://s1:26379;sentinel://s2:26379")
    monkeypatch.setenv("TRACKER_BROKER_SENTINEL_MASTER", "tracker")
    monkeypatch.setenv("TRACKER_BROKER_VISIBILITY_TIMEOUT_S", "7200")
    assert transport_options(Settings()) == {"visibility_timeout": 7200, "master_name": "tracker"}


def test_an_unknown_log_format_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKER_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError, match="log_format"):
        Settings()


def test_the_read_url_and_the_metrics_token_are_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "metrics_token"
    token_file.write_text("t" * 40 + "\n", encoding="utf-8")
    monkeypatch.setenv("TRACKER_METRICS_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("TRACKER_DATABASE_READ_URL", "postgresql://u:replica-pw@replica/db")
    s = Settings(**_secrets_from_files())  # type: ignore[arg-type]
    assert s.metrics_token is not None and s.metrics_token.get_secret_value() == "t" * 40
    shown = str(s.masked())
    assert "replica-pw" not in shown and "t" * 40 not in shown
