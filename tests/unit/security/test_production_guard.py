"""CAREPATH_ENV=production refuses development credentials and plaintext transports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from carepath_runtime.production_guard import DEV_TOKENS_FILE, KNOWN_DEVELOPMENT_SECRETS, findings
from carepath_runtime.settings import Settings

DEV_SECRET = next(iter(KNOWN_DEVELOPMENT_SECRETS))


@pytest.fixture()
def tokens(tmp_path: Path) -> str:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"t-9f2c": {"subject": "ehr", "team": "x", "role": "integration"}}))
    return str(path)


def secure(tokens: str, **overrides: object) -> Settings:
    base: dict[str, object] = dict(
        carepath_env="production", carepath_api_tokens_file=tokens,
        kafka_security_protocol="SASL_SSL", kafka_sasl_username="carepath",
        kafka_sasl_password=SecretStr("k-pass"),
        redis_url="rediss://carepath:r-pass@redis.internal:6390/0",
    )
    return Settings(**{**base, **overrides})  # type: ignore[arg-type]


def settings_named(found: list[object]) -> list[str]:
    return [f.setting for f in found]  # type: ignore[attr-defined]


def test_a_secure_production_configuration_passes(tokens: str) -> None:
    assert findings(secure(tokens)) == []


def test_nothing_is_checked_outside_production() -> None:
    assert findings(Settings(carepath_env="development")) == []


@pytest.mark.parametrize(("overrides", "setting"), [
    ({"carepath_api_tokens_file": None}, "CAREPATH_API_TOKENS_FILE"),
    ({"carepath_api_tokens_file": str(DEV_TOKENS_FILE)}, "CAREPATH_API_TOKENS_FILE"),
    ({"carepath_webhook_secret": SecretStr(DEV_SECRET)}, "CAREPATH_WEBHOOK_SECRET"),
    ({"kafka_security_protocol": "PLAINTEXT"}, "KAFKA_SECURITY_PROTOCOL"),
    ({"kafka_security_protocol": "SASL_PLAINTEXT"}, "KAFKA_SECURITY_PROTOCOL"),
    ({"kafka_security_protocol": "SSL"}, "KAFKA_SECURITY_PROTOCOL"),  # no client identity
    ({"redis_url": "redis://carepath:r-pass@redis.internal:6379/0"}, "REDIS_URL"),
    ({"redis_url": "rediss://redis.internal:6390/0"}, "REDIS_URL"),  # no ACL user
])
def test_each_development_setting_is_refused(tokens: str, overrides: dict[str, object],
                                             setting: str) -> None:
    found = findings(secure(tokens, **overrides))
    assert settings_named(found) == [setting] and found[0].fatal


def test_a_token_file_holding_a_development_token_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "copied.json"
    dev = json.loads(DEV_TOKENS_FILE.read_text())
    path.write_text(json.dumps({"dev-coordinator-token": dev["dev-coordinator-token"]}))
    assert settings_named(findings(secure(str(path)))) == ["CAREPATH_API_TOKENS_FILE"]


def test_insecure_transport_may_be_allowed_explicitly_but_dev_secrets_never(
        tokens: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPATH_ALLOW_INSECURE_TRANSPORT", "true")
    found = findings(secure(tokens, kafka_security_protocol="PLAINTEXT",
                            carepath_webhook_secret=SecretStr(DEV_SECRET)))
    assert {(f.setting, f.fatal) for f in found} == {
        ("KAFKA_SECURITY_PROTOCOL", False), ("CAREPATH_WEBHOOK_SECRET", True)}


def test_ssl_with_a_client_certificate_is_authenticated(tokens: str) -> None:
    assert findings(secure(tokens, kafka_security_protocol="SSL",
                           kafka_ssl_certfile="/etc/carepath/client.pem")) == []


def test_no_token_file_at_all_is_allowed(tokens: str) -> None:
    """``CAREPATH_API_TOKENS_FILE=""``: callers bring the OIDC issuer's tokens only."""
    assert findings(secure(tokens, carepath_api_tokens_file="")) == []


def test_the_development_file_is_refused_wherever_it_is_mounted(tmp_path: Path) -> None:
    mounted = tmp_path / "etc" / "carepath" / DEV_TOKENS_FILE.name
    mounted.parent.mkdir(parents=True)
    mounted.write_text(DEV_TOKENS_FILE.read_text())
    found = findings(secure(str(mounted)))
    assert settings_named(found) == ["CAREPATH_API_TOKENS_FILE"]
    assert "development token file" in found[0].reason  # type: ignore[attr-defined]
