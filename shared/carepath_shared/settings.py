"""Runtime settings shared by every service, read from the environment (pydantic-settings)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
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
    carepath_pathway_profile: str = Field(default="seed")
    carepath_webhook_url: str | None = Field(default=None)
    carepath_webhook_secret: str = Field(default="whsec_Y2FyZXBhdGgtZGV2LXNlY3JldC1rZXktMDEyMzQ1")
    carepath_subscriptions_file: str | None = Field(default=None)
    # The development token file (None: deploy/tokens.dev.json under the working directory;
    # "" turns it off). See carepath_shared.auth.
    carepath_api_tokens_file: str | None = Field(default=None)
    # JWT bearer tokens from an OpenID Connect issuer (carepath_shared.auth_jwt); off unless
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
    # Request bodies over these get 413 before they are parsed (carepath_shared.http_body).
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
    carepath_stream_keepalive_s: float = Field(default=15.0, gt=0)

    @property
    def namespace(self) -> str:
        return self.carepath_namespace


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
