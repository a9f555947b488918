"""With ``CAREPATH_ENV=production``, a service refuses to start on development credentials.

Checked once at start-up (:func:`enforce`, called by :func:`carepath_runtime.service.make_runtime`):

* the API token file is the development one (``CAREPATH_API_TOKENS_FILE`` unset, pointing at
  ``deploy/tokens.dev.json``, or holding any of its tokens or a ``dev-`` token);
* a known development webhook secret is configured (``CAREPATH_WEBHOOK_SECRET``);
* Kafka without TLS (``KAFKA_SECURITY_PROTOCOL`` ``PLAINTEXT``/``SASL_PLAINTEXT``) or without
  client authentication (``SSL`` and no client certificate);
* Redis without TLS (``redis://``) or without credentials.

Each finding is one log line naming the setting (never its value), then the process exits with
status 78 (``EX_CONFIG``). The transport findings become warnings with
``CAREPATH_ALLOW_INSECURE_TRANSPORT=true``, for a deployment whose network layer (a service
mesh with mutual TLS, a Unix socket) already protects those links; the credential findings
never do. Outside production nothing is checked.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from carepath_runtime.auth import DEFAULT_TOKENS_FILE
from carepath_runtime.settings import Settings
from carepath_runtime.transport_security import (
    kafka_uses_sasl,
    kafka_uses_tls,
    redis_has_credentials,
    redis_uses_tls,
)

DEV_TOKENS_FILE = Path(DEFAULT_TOKENS_FILE)
"""The development token file, relative to the working directory (the repository in
development). Found by its name wherever it is mounted, never through this module's own path
(which, installed in an image, is nowhere near a ``deploy/`` directory)."""
# Secrets that were once committed to this repository: never valid in production.
KNOWN_DEVELOPMENT_SECRETS = frozenset({"whsec_Y2FyZXBhdGgtZGV2LXNlY3JldC1rZXktMDEyMzQ1"})
EXIT_CONFIG = 78
DEV_TOKEN_PREFIX = "dev-"  # every token of the development file starts with it


@dataclass(frozen=True)
class Finding:
    setting: str
    reason: str
    fatal: bool


def _token_file_findings(settings: Settings) -> list[Finding]:
    setting = "CAREPATH_API_TOKENS_FILE"
    path = settings.carepath_api_tokens_file
    if path is None:
        return [Finding(setting, "unset, so the development token file is used", True)]
    if not path.strip():
        return []  # no token file: callers authenticate with the OIDC issuer's tokens only
    source = Path(path)
    if source.name == DEV_TOKENS_FILE.name:
        return [Finding(setting, "points at the development token file", True)]
    try:
        tokens = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []  # unreadable: the token registry reports it when it loads the file
    if isinstance(tokens, dict) and any(str(t).startswith(DEV_TOKEN_PREFIX) for t in tokens):
        return [Finding(setting, "holds development tokens", True)]
    return []


def _transport_findings(settings: Settings) -> list[Finding]:
    found: list[Finding] = []
    if not kafka_uses_tls(settings):
        found.append(Finding("KAFKA_SECURITY_PROTOCOL",
                             "Kafka traffic would be plaintext (use SASL_SSL)", True))
    elif not kafka_uses_sasl(settings) and not settings.kafka_ssl_certfile:
        found.append(Finding("KAFKA_SECURITY_PROTOCOL",
                             "Kafka clients would not authenticate (use SASL_SSL, or SSL "
                             "with KAFKA_SSL_CERTFILE)", True))
    if not redis_uses_tls(settings):
        found.append(Finding("REDIS_URL", "Redis traffic would be plaintext (use rediss://)",
                             True))
    if not redis_has_credentials(settings):
        found.append(Finding("REDIS_URL", "Redis would be used without an ACL user and "
                             "password", True))
    return found


def findings(settings: Settings) -> list[Finding]:
    """What stands between this configuration and a production start (empty: nothing)."""
    if settings.carepath_env.strip().lower() != "production":
        return []
    found = _token_file_findings(settings)
    secret = settings.carepath_webhook_secret
    if secret is not None and secret.get_secret_value() in KNOWN_DEVELOPMENT_SECRETS:
        found.append(Finding("CAREPATH_WEBHOOK_SECRET", "is a known development secret", True))
    insecure_ok = os.environ.get("CAREPATH_ALLOW_INSECURE_TRANSPORT", "").lower() in (
        "1", "true", "yes")
    for finding in _transport_findings(settings):
        found.append(Finding(finding.setting, finding.reason, finding.fatal and not insecure_ok))
    return found


def enforce(settings: Settings, service: str) -> None:
    """Log every finding; exit with status 78 if any is fatal."""
    found = findings(settings)
    if not found:
        return
    from carepath_runtime.log import configure_logging, get_logger

    # Not rate-limited: every finding is its own line, though they share one event name.
    configure_logging(service, settings.carepath_log_level, rate_interval_s=0)
    log = get_logger("production_guard")
    for finding in found:
        if finding.fatal:
            log.error("production_refused", setting=finding.setting, reason=finding.reason)
        else:
            log.warning("production_insecure_transport_allowed", setting=finding.setting,
                        reason=finding.reason)
    if any(f.fatal for f in found):
        raise SystemExit(EXIT_CONFIG)
