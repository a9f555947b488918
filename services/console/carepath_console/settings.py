"""The console's knobs, read from the environment (over the shared settings)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    redis_url: str = Field(default="redis://127.0.0.1:6379/0")
    carepath_namespace: str = Field(default="carepath")
    carepath_log_level: str = Field(default="INFO")
    carepath_http_host: str = Field(default="127.0.0.1")
    carepath_api_tokens_file: str | None = Field(default=None)
    # "production" turns the development sign-in off and requires the Secure cookie.
    carepath_env: str = Field(default="development")
    console_port: int = Field(default=8000)
    # The origin browsers use to reach the console (the CSRF Origin check compares with it).
    console_public_origin: str | None = Field(default=None)
    referrals_port: int = Field(default=8003)
    notifications_port: int = Field(default=8004)
    console_referrals_url: str | None = Field(default=None)
    console_notifications_url: str | None = Field(default=None)
    # Development sign-in (choose an identity of the tokens file); never in production.
    console_dev_signin: bool | None = Field(default=None)
    # Secure cookie with the __Host- prefix; None: on unless the origin is plain http.
    console_cookie_secure: bool | None = Field(default=None)
    console_session_ttl_s: int = Field(default=8 * 3600, ge=60)
    # A token the console uses only to learn *that* something changed for a team member's
    # live view (the stream is not open to team members); nothing read with it is ever sent
    # to a browser. Default in development: the dashboard token.
    console_stream_token: str | None = Field(default=None)
    # OpenID Connect (authorization code + PKCE) when an issuer is configured.
    console_oidc_issuer: str | None = Field(default=None)
    console_oidc_client_id: str = Field(default="carepath-console")
    console_oidc_client_secret: str | None = Field(default=None)
    console_oidc_scopes: str = Field(default="openid profile email")
    console_oidc_team_claim: str = Field(default="carepath_team")
    console_oidc_role_claim: str = Field(default="carepath_role")
    console_oidc_subject_claim: str = Field(default="sub")
    console_upstream_timeout_s: float = Field(default=15.0, gt=0)
    # Test hooks (POST /test/drop-streams); only honoured outside production.
    console_test_hooks: bool = Field(default=False)

    @property
    def production(self) -> bool:
        return self.carepath_env.lower() == "production"

    @property
    def origin(self) -> str:
        return (self.console_public_origin
                or f"http://{self.carepath_http_host}:{self.console_port}").rstrip("/")

    @property
    def dev_signin(self) -> bool:
        if self.production:
            return False
        return True if self.console_dev_signin is None else self.console_dev_signin

    @property
    def cookie_secure(self) -> bool:
        if self.console_cookie_secure is not None:
            return self.console_cookie_secure or self.production
        return self.production or self.origin.startswith("https://")

    @property
    def cookie_name(self) -> str:
        # The __Host- prefix needs Secure (and Path=/, no Domain); plain http cannot have it.
        return "__Host-carepath-session" if self.cookie_secure else "carepath-session"

    @property
    def referrals_url(self) -> str:
        return (self.console_referrals_url or f"http://127.0.0.1:{self.referrals_port}").rstrip("/")

    @property
    def notifications_url(self) -> str:
        return (self.console_notifications_url
                or f"http://127.0.0.1:{self.notifications_port}").rstrip("/")

    @property
    def stream_token(self) -> str | None:
        if self.console_stream_token:
            return self.console_stream_token
        return None if self.production else "dev-dashboard-token"

    @property
    def test_hooks(self) -> bool:
        return self.console_test_hooks and not self.production


@lru_cache(maxsize=1)
def get_console_settings() -> ConsoleSettings:
    return ConsoleSettings()
