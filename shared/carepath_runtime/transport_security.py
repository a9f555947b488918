"""How every Carepath client reaches Kafka and Redis securely, from settings.

Kafka: ``KAFKA_SECURITY_PROTOCOL`` (``PLAINTEXT`` by default for a laptop; ``SASL_SSL`` in a
deployment) with ``KAFKA_SASL_MECHANISM`` (``SCRAM-SHA-512``), ``KAFKA_SASL_USERNAME`` and
``KAFKA_SASL_PASSWORD``; TLS trusts ``KAFKA_SSL_CAFILE`` (else the system roots) and presents
``KAFKA_SSL_CERTFILE``/``KAFKA_SSL_KEYFILE`` when given (mutual TLS). The same options go to
the FastStream broker (producer and consumers), the aiokafka admin client (topic creation),
the live stream's consumer and the CLI tools.

Redis: ``REDIS_URL=rediss://user:password@host:6390/0`` (TLS and an ACL user), or
``REDIS_USERNAME``/``REDIS_PASSWORD`` beside a URL without them; ``REDIS_SSL_CA_CERTS`` and
the optional client pair ``REDIS_SSL_CERTFILE``/``REDIS_SSL_KEYFILE``. Certificates are always
verified (``ssl_cert_reqs=required``), host names too unless ``*_SSL_CHECK_HOSTNAME=false``.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from carepath_runtime.settings import Settings


def kafka_uses_tls(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def kafka_uses_sasl(settings: Settings) -> bool:
    return settings.kafka_security_protocol.startswith("SASL_")


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for Kafka connections, or None for a plaintext protocol."""
    if not kafka_uses_tls(settings):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.kafka_ssl_cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = settings.kafka_ssl_check_hostname
    if settings.kafka_ssl_certfile:
        ctx.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile)
    return ctx


def _sasl_credentials(settings: Settings) -> tuple[str, str]:
    if not settings.kafka_sasl_username or settings.kafka_sasl_password is None:
        raise ValueError(f"KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs "
                         "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
    return settings.kafka_sasl_username, settings.kafka_sasl_password.get_secret_value()


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    context = kafka_ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if kafka_uses_sasl(settings):
        username, password = _sasl_credentials(settings)
        options.update(sasl_mechanism=settings.kafka_sasl_mechanism,
                       sasl_plain_username=username, sasl_plain_password=password)
    return options


def kafka_broker_security(settings: Settings) -> BaseSecurity | None:
    """The same, as FastStream's ``security=`` object for ``KafkaBroker``."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = kafka_ssl_context(settings)
    use_ssl = context is not None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    username, password = _sasl_credentials(settings)
    kinds: dict[str, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
        "PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512,
    }
    return kinds[settings.kafka_sasl_mechanism](username, password, ssl_context=context,
                                                use_ssl=use_ssl)


def redis_uses_tls(settings: Settings) -> bool:
    return urlsplit(settings.redis_url).scheme == "rediss"


def redis_has_credentials(settings: Settings) -> bool:
    parts = urlsplit(settings.redis_url)
    return bool(parts.password or settings.redis_password is not None)


def redis_connection_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``redis.asyncio.Redis.from_url`` beside the URL."""
    options: dict[str, Any] = {}
    if settings.redis_username:
        options["username"] = settings.redis_username
    if settings.redis_password is not None:
        options["password"] = settings.redis_password.get_secret_value()
    if redis_uses_tls(settings):
        options["ssl_cert_reqs"] = "required"
        options["ssl_check_hostname"] = settings.redis_ssl_check_hostname
        if settings.redis_ssl_ca_certs:
            options["ssl_ca_certs"] = settings.redis_ssl_ca_certs
        if settings.redis_ssl_certfile:
            options["ssl_certfile"] = settings.redis_ssl_certfile
            options["ssl_keyfile"] = settings.redis_ssl_keyfile
    return options
