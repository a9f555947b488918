"""Transport settings become the same client options everywhere (aiokafka, FastStream, Redis)."""

from __future__ import annotations

import ssl

import pytest
from faststream.security import SASLScram512
from pydantic import SecretStr

from carepath_runtime.settings import Settings
from carepath_runtime.transport_security import (
    kafka_broker_security,
    kafka_client_options,
    redis_connection_options,
)


def test_plaintext_by_default() -> None:
    s = Settings()
    assert kafka_client_options(s) == {"security_protocol": "PLAINTEXT"}
    assert kafka_broker_security(s) is None
    assert redis_connection_options(s) == {}


def test_sasl_ssl_scram_512_for_every_kafka_client() -> None:
    s = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="carepath",
                 kafka_sasl_password=SecretStr("pw"))
    options = kafka_client_options(s)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("carepath", "pw")
    ctx = options["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    security = kafka_broker_security(s)
    assert isinstance(security, SASLScram512) and security.use_ssl
    assert security.username == "carepath"


def test_sasl_without_credentials_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="KAFKA_SASL_USERNAME"):
        kafka_client_options(Settings(kafka_security_protocol="SASL_SSL"))


def test_rediss_verifies_the_server_and_uses_the_acl_user() -> None:
    s = Settings(redis_url="rediss://redis.internal:6390/0", redis_username="carepath",
                 redis_password=SecretStr("pw"), redis_ssl_ca_certs="/etc/ca.pem")
    assert redis_connection_options(s) == {
        "username": "carepath", "password": "pw", "ssl_cert_reqs": "required",
        "ssl_check_hostname": True, "ssl_ca_certs": "/etc/ca.pem"}


def test_secrets_do_not_show_in_settings_repr() -> None:
    s = Settings(kafka_sasl_password=SecretStr("k-secret"), redis_password=SecretStr("r-secret"),
                 carepath_webhook_secret=SecretStr("whsec_x"))
    assert "k-secret" not in repr(s) and "r-secret" not in repr(s) and "whsec_x" not in repr(s)
