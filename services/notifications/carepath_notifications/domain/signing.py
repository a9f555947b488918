"""Standard Webhooks signing (sender side).

The scheme itself (secret decoding, the HMAC over ``{msg_id}.{timestamp}.{body}``) lives in
``carepath_runtime.webhook_verify``, the stdlib-only file subscribers copy, so the signer and the
verifier cannot drift apart. Secret formats are documented there: ``whsec_<base64 key>`` (the
Standard Webhooks form, what subscribers are given), a raw string (its UTF-8 bytes), or bytes.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence

from carepath_runtime.webhook_verify import (
    SECRET_PREFIX,
    SIGNATURE_VERSION,
    compute_signature,
    decode_secret,
)

Secret = str | bytes

CONTENT_TYPE = "application/json"


def generate_secret(nbytes: int = 32) -> str:
    """A fresh random secret in the ``whsec_`` form."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode("ascii")


def sign(secret: Secret, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of f"{msg_id}.{timestamp}." + body>``.

    ``msg_id`` may not contain ``.`` (the delimiter; the spec forbids it) and ``timestamp`` is
    non-negative Unix seconds of this attempt.
    """
    if not msg_id or "." in msg_id:
        raise ValueError("msg_id must be non-empty and contain no '.'")
    if timestamp < 0:
        raise ValueError("timestamp must be non-negative Unix seconds")
    digest = compute_signature(decode_secret(secret), msg_id, timestamp, body)
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def build_headers(
    secret: Secret | Sequence[Secret],
    msg_id: str,
    timestamp: int,
    body: bytes,
    content_type: str = CONTENT_TYPE,
) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt.

    Pass several secrets during key rotation (e.g. ``[new, old]``): one signature per secret,
    space-separated, so receivers holding either secret accept the request.
    """
    keys = [secret] if isinstance(secret, str | bytes) else list(secret)
    if not keys:
        raise ValueError("at least one secret is required")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(k, msg_id, timestamp, body) for k in keys),
        "content-type": content_type,
    }
