"""Signing, checked against the spec computed independently (hmac + hashlib + base64 here)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from carepath_notifications.domain import build_headers, generate_secret, sign

KEY = bytes(range(32))
WHSEC = "whsec_" + base64.b64encode(KEY).decode()
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
TS = 1674087231
BODY = b'{"type":"carepath.referral.created.v1","data":{"referral_id":"r-1"}}'


def spec_signature(key: bytes, msg_id: str, ts: int, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def test_whsec_secret_is_base64_decoded_key() -> None:
    assert sign(WHSEC, MSG_ID, TS, BODY) == spec_signature(KEY, MSG_ID, TS, BODY)


def test_whsec_secret_without_padding_decodes_the_same() -> None:
    key = bytes(range(25))  # 25 bytes -> base64 ends in '=='
    padded = "whsec_" + base64.b64encode(key).decode()
    assert padded.endswith("==")
    assert sign(padded.rstrip("="), MSG_ID, TS, BODY) == spec_signature(key, MSG_ID, TS, BODY)


def test_raw_string_secret_uses_its_utf8_bytes() -> None:
    raw = "a-raw-secret-that-is-long-enough-0123"
    assert sign(raw, MSG_ID, TS, BODY) == spec_signature(raw.encode(), MSG_ID, TS, BODY)


def test_bytes_secret_is_used_as_is() -> None:
    assert sign(KEY, MSG_ID, TS, BODY) == spec_signature(KEY, MSG_ID, TS, BODY)


def test_known_vector_from_standard_webhooks_reference_library() -> None:
    # standard-webhooks/standard-webhooks: libraries/python/tests/test_webhooks.py
    # (test_sign_function)
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_covers_id_timestamp_and_every_body_byte() -> None:
    base = sign(WHSEC, MSG_ID, TS, BODY)
    assert sign(WHSEC, MSG_ID + "x", TS, BODY) != base
    assert sign(WHSEC, MSG_ID, TS + 1, BODY) != base
    assert sign(WHSEC, MSG_ID, TS, BODY + b" ") != base


def test_build_headers() -> None:
    headers = build_headers(WHSEC, MSG_ID, TS, BODY)
    assert headers == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(TS),
        "webhook-signature": spec_signature(KEY, MSG_ID, TS, BODY),
        "content-type": "application/json",
    }


def test_build_headers_with_rotated_secrets_emits_one_signature_per_secret() -> None:
    old_key = bytes(range(100, 132))
    old = "whsec_" + base64.b64encode(old_key).decode()
    headers = build_headers([WHSEC, old], MSG_ID, TS, BODY)
    assert headers["webhook-signature"].split(" ") == [
        spec_signature(KEY, MSG_ID, TS, BODY),
        spec_signature(old_key, MSG_ID, TS, BODY),
    ]


@pytest.mark.parametrize(
    "secret",
    ["whsec_not*base64!", "whsec_" + base64.b64encode(b"short").decode(), "too-short", b""],
)
def test_bad_or_short_secrets_are_refused(secret: str | bytes) -> None:
    with pytest.raises(ValueError):
        sign(secret, MSG_ID, TS, BODY)


@pytest.mark.parametrize(("msg_id", "ts"), [("msg.with.dots", TS), ("", TS), (MSG_ID, -1)])
def test_bad_id_or_timestamp_refused(msg_id: str, ts: int) -> None:
    with pytest.raises(ValueError):
        sign(WHSEC, msg_id, ts, BODY)


def test_build_headers_needs_a_secret() -> None:
    with pytest.raises(ValueError):
        build_headers([], MSG_ID, TS, BODY)


def test_generated_secret_is_whsec_with_32_random_bytes() -> None:
    first, second = generate_secret(), generate_secret()
    assert first.startswith("whsec_") and first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32
