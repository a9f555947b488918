"""Runtime settings shared by every service, read from the environment (pydantic-settings)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """One place for every knob. Environment variables win; defaults suit a laptop."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    kafka_bootstrap_servers: str = Field(default="127.0.0.1:9092")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0")
    # Prefix for topic names and Redis keys; lets tests run isolated on a shared broker.
    carepath_namespace: str = Field(default="carepath")
    carepath_log_level: str = Field(default="INFO")
    carepath_max_attempts: int = Field(default=5, ge=1, le=100)
    carepath_retry_backoff_ms: int = Field(default=200, ge=0)
    # Offsets are committed after the effect, in batches of this many records or this age.
    carepath_commit_every: int = Field(default=100, ge=1)
    carepath_commit_interval_ms: int = Field(default=200, ge=0)
    # A consumer takes up to this many records per poll (a batch of one never waits for
    # more); each partition's share is folded, written and published together.
    carepath_batch_max_records: int = Field(default=200, ge=1, le=10000)
    carepath_pathway_profile: str = Field(default="seed")
    carepath_webhook_url: str | None = Field(default=None)
    # No default: a secret in the repository would let anyone forge the default webhook's
    # calls. `make run` generates one under .run/ (deploy/run-services.sh).
    carepath_webhook_secret: SecretStr | None = Field(default=None)
    # host:port pairs webhooks may reach although they resolve to loopback/private addresses
    # (and over plain http), comma-separated: "127.0.0.1:8099,hooks.internal:8443".
    carepath_webhook_allowlist: str = Field(default="")
    # "production" makes every service refuse development credentials and warn about
    # plaintext transports (carepath_runtime.production_guard).
    carepath_env: str = Field(default="development")
    carepath_subscriptions_file: str | None = Field(default=None)
    # The development token file (None: deploy/tokens.dev.json under the working directory;
    # "" turns it off). See carepath_runtime.auth.
    carepath_api_tokens_file: str | None = Field(default=None)
    # JWT bearer tokens from an OpenID Connect issuer (carepath_runtime.auth_jwt); off unless
    # an issuer is set. The JWKS URL defaults to the issuer's discovery document's jwks_uri.
    carepath_oidc_issuer: str | None = Field(default=None)
    carepath_oidc_audience: str | None = Field(default=None)
    carepath_oidc_jwks_url: str | None = Field(default=None)
    carepath_oidc_algorithms: str = Field(default="RS256,ES256")
    carepath_oidc_role_claim: str = Field(default="carepath_role")
    carepath_oidc_team_claim: str = Field(default="carepath_team")
    carepath_oidc_subject_claim: str = Field(default="sub")
    carepath_oidc_leeway_s: float = Field(default=30.0, ge=0, le=300)
    carepath_oidc_jwks_cache_s: float = Field(default=300.0, ge=0)
    # An unknown key id refetches the JWKS at most this often (key rotation, not a DoS).
    carepath_oidc_jwks_min_refresh_s: float = Field(default=10.0, ge=0)
    # Request bodies over these get 413 before they are parsed (carepath_runtime.http_body).
    carepath_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    carepath_max_fhir_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    carepath_routing_file: str | None = Field(default=None)
    carepath_deadline_scan_seconds: float = Field(default=30.0, gt=0)
    carepath_link_base: str = Field(default="http://127.0.0.1:8003")
    carepath_http_host: str = Field(default="127.0.0.1")
    intake_port: int = Field(default=8001)
    pathway_port: int = Field(default=8002)
    referrals_port: int = Field(default=8003)
    notifications_port: int = Field(default=8004)
    # Notification delivery (issue 5): the durable per-delivery job queue in Redis.
    carepath_notify_max_attempts: int = Field(default=8, ge=1, le=100)
    carepath_notify_backoff_base_s: float = Field(default=1.0, ge=0)
    carepath_notify_backoff_max_s: float = Field(default=300.0, ge=0)
    # Requests in flight to one endpoint (webhook URL or mailbox). 1 keeps a subscriber's
    # notices in order and bounds a crash's repeats to one per endpoint.
    carepath_notify_endpoint_concurrency: int = Field(default=1, ge=1, le=64)
    carepath_notify_max_inflight: int = Field(default=64, ge=1, le=1024)
    carepath_notify_lease_s: float = Field(default=15.0, gt=0)
    carepath_notify_poll_s: float = Field(default=0.2, gt=0)
    carepath_notify_http_timeout_s: float = Field(default=5.0, gt=0)
    carepath_smtp_host: str = Field(default="127.0.0.1")
    carepath_smtp_port: int = Field(default=25, ge=1, le=65535)
    carepath_smtp_sender: str = Field(default="carepath@localhost")
    carepath_smtp_timeout_s: float = Field(default=10.0, gt=0)
    # How often each service samples its consumer groups' lag for /metrics.
    carepath_lag_sample_seconds: float = Field(default=15.0, gt=0)
    carepath_stream_keepalive_s: float = Field(default=15.0, gt=0)
    # Reliability (issue 11): waiting out dependencies, bounded answers, load shedding.
    carepath_health_interval_s: float = Field(default=1.0, gt=0)
    carepath_health_probe_timeout_s: float = Field(default=2.0, gt=0)
    carepath_transient_backoff_ms: int = Field(default=100, ge=1)
    carepath_transient_max_backoff_ms: int = Field(default=2000, ge=1)
    carepath_kafka_session_timeout_ms: int = Field(default=10000, ge=1000)
    carepath_kafka_retry_backoff_ms: int = Field(default=500, ge=10)
    carepath_redis_socket_timeout_s: float = Field(default=2.0, gt=0)
    carepath_redis_retries: int = Field(default=3, ge=0)
    carepath_redis_health_check_interval_s: int = Field(default=2, ge=0)
    carepath_log_rate_interval_s: float = Field(default=10.0, ge=0)
    intake_dependency_timeout_s: float = Field(default=2.0, gt=0)
    intake_max_inflight: int = Field(default=256, ge=1)
    intake_retry_after_s: int = Field(default=2, ge=1)
    # Transport security (carepath_runtime.transport_security). Kafka: PLAINTEXT, SSL,
    # SASL_PLAINTEXT or SASL_SSL; SASL mechanism SCRAM-SHA-512 (or -256, PLAIN).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT")
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        default="SCRAM-SHA-512")
    kafka_sasl_username: str | None = Field(default=None)
    kafka_sasl_password: SecretStr | None = Field(default=None)
    kafka_ssl_cafile: str | None = Field(default=None)
    kafka_ssl_certfile: str | None = Field(default=None)
    kafka_ssl_keyfile: str | None = Field(default=None)
    kafka_ssl_check_hostname: bool = Field(default=True)
    # Redis: REDIS_URL may be rediss://user:password@host:port/0 (TLS + ACL user); the
    # user and password may come separately instead, and the CA (plus an optional client
    # certificate) from files.
    redis_username: str | None = Field(default=None)
    redis_password: SecretStr | None = Field(default=None)
    redis_ssl_ca_certs: str | None = Field(default=None)
    redis_ssl_certfile: str | None = Field(default=None)
    redis_ssl_keyfile: str | None = Field(default=None)
    redis_ssl_check_hostname: bool = Field(default=True)

    @property
    def namespace(self) -> str:
        return self.carepath_namespace


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
