"""Verify Carepath's signed webhooks (Standard Webhooks 1.0, symmetric ``v1`` scheme).

Standard library only: a subscriber may copy this one file into their own code base.

Every webhook Carepath sends carries three headers::

    webhook-id:        msg_...       stable across redeliveries: use it as your idempotency key
    webhook-timestamp: 1700000000    Unix seconds of this attempt
    webhook-signature: v1,<base64>   one or more, space-separated (several during key rotation)

and the signature is ``base64(HMAC-SHA256(key, f"{webhook-id}.{webhook-timestamp}." + raw_body))``.

Usage::

    from carepath_runtime.webhook_verify import WebhookVerificationError, verify

    try:
        verify(secret, request.headers, raw_body)   # the raw bytes, never re-serialised JSON
    except WebhookVerificationError as exc:
        return 400, exc.reason

Secrets. The Standard Webhooks form is ``whsec_`` followed by the base64 of the key bytes; the
key is the decoded bytes (padding may be omitted). A string *without* the prefix is taken as a
raw secret: its UTF-8 bytes are the key. (The reference libraries base64-decode an unprefixed
string instead, so always hand subscribers the ``whsec_`` form.) ``bytes`` are used as is.
Keys shorter than 24 bytes are refused, as the spec requires.

After ``verify`` succeeds, still de-duplicate on ``webhook-id``: a valid request can be replayed
inside the tolerance window, and Carepath redelivers on timeouts (at-least-once).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "MIN_SECRET_BYTES",
    "SECRET_PREFIX",
    "SIGNATURE_VERSION",
    "WebhookVerificationError",
    "compute_signature",
    "decode_secret",
    "verify",
]

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
DEFAULT_TOLERANCE_SECONDS = 300
SIGNATURE_VERSION = "v1"

_HEADER_ID = "webhook-id"
_HEADER_TIMESTAMP = "webhook-timestamp"
_HEADER_SIGNATURE = "webhook-signature"


class WebhookVerificationError(Exception):
    """The request is not a valid Carepath webhook; ``reason`` is a short machine code.

    Reasons: ``missing_header``, ``invalid_timestamp``, ``timestamp_too_old``,
    ``timestamp_too_new``, ``no_matching_signature``.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def decode_secret(secret: str | bytes) -> bytes:
    """The HMAC key for a secret: ``whsec_<base64>``, a raw string, or raw bytes.

    Raises ``ValueError`` on malformed base64 or a key shorter than ``MIN_SECRET_BYTES``.
    """
    if isinstance(secret, bytes):
        key = secret
    elif secret.startswith(SECRET_PREFIX):
        encoded = secret[len(SECRET_PREFIX) :]
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("webhook secret: invalid base64 after 'whsec_'") from exc
    else:
        key = secret.encode("utf-8")
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(
            f"webhook secret: key is {len(key)} bytes, at least {MIN_SECRET_BYTES} are required"
        )
    return key


def compute_signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    """The raw HMAC-SHA256 over ``{msg_id}.{timestamp}.{body}``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:  # plain dicts are case-sensitive; HTTP header names are not
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    if value is None or not value.strip():
        raise WebhookVerificationError("missing_header", f"missing or empty {name} header")
    return value.strip()


def _candidates(header: str) -> list[bytes]:
    """The decoded ``v1`` signatures in the header; other versions and junk are skipped."""
    found = []
    for entry in header.split():
        version, sep, encoded = entry.partition(",")
        if not sep or version != SIGNATURE_VERSION:
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def verify(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Return if the request is authentic and fresh; raise ``WebhookVerificationError`` if not.

    ``body`` must be the raw request bytes. ``now`` (Unix seconds) defaults to the clock; the
    timestamp must lie within ``tolerance_seconds`` of it in either direction (replay defence).
    """
    key = decode_secret(secret)
    msg_id = _header(headers, _HEADER_ID)
    raw_ts = _header(headers, _HEADER_TIMESTAMP)
    signature_header = _header(headers, _HEADER_SIGNATURE)

    if not (raw_ts.isascii() and raw_ts.isdigit() and len(raw_ts) <= 15):
        raise WebhookVerificationError("invalid_timestamp", "webhook-timestamp is not Unix seconds")
    timestamp = int(raw_ts)
    current = time.time() if now is None else now
    if current - timestamp > tolerance_seconds:
        raise WebhookVerificationError("timestamp_too_old", "webhook-timestamp outside tolerance")
    if timestamp - current > tolerance_seconds:
        raise WebhookVerificationError("timestamp_too_new", "webhook-timestamp outside tolerance")

    expected = compute_signature(key, msg_id, timestamp, body)
    # compare_digest is constant-time for equal lengths; check every candidate, no early exit
    matched = False
    for candidate in _candidates(signature_header):
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookVerificationError("no_matching_signature", "no valid v1 signature")
