"""The subscriber-side verifier: accepts authentic fresh requests, rejects everything else."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carepath_notifications.domain import build_headers
from carepath_runtime.webhook_verify import WebhookVerificationError, verify

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(bytes(range(1, 33))).decode()
MSG_ID = "msg_abc"
NOW = 1_700_000_000
BODY = b'{"type":"carepath.referral.created.v1","data":{"referral_id":"r-1"}}'


def headers(ts: int = NOW, secret: str = SECRET, body: bytes = BODY) -> dict[str, str]:
    return build_headers(secret, MSG_ID, ts, body)


def reason(exc: pytest.ExceptionInfo[WebhookVerificationError]) -> str:
    return exc.value.reason


def test_accepts_a_valid_request() -> None:
    verify(SECRET, headers(), BODY, now=NOW)


def test_accepts_request_signed_independently_of_the_signer() -> None:
    mac = hmac.new(bytes(range(32)), f"{MSG_ID}.{NOW}.".encode() + BODY, hashlib.sha256)
    hdrs = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(NOW),
        "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode(),
    }
    verify(SECRET, hdrs, BODY, now=NOW)


def test_header_names_are_case_insensitive() -> None:
    hdrs = {k.title(): v for k, v in headers().items()}
    verify(SECRET, hdrs, BODY, now=NOW)


@pytest.mark.parametrize("skew", [-300, 0, 300])
def test_accepts_timestamps_within_tolerance(skew: int) -> None:
    verify(SECRET, headers(ts=NOW + skew), BODY, now=NOW)


def test_rejects_replay_too_old() -> None:
    with pytest.raises(WebhookVerificationError) as exc:
        verify(SECRET, headers(ts=NOW - 301), BODY, now=NOW)
    assert reason(exc) == "timestamp_too_old"


def test_rejects_timestamp_too_far_in_the_future() -> None:
    with pytest.raises(WebhookVerificationError) as exc:
        verify(SECRET, headers(ts=NOW + 301), BODY, now=NOW)
    assert reason(exc) == "timestamp_too_new"


def test_custom_tolerance() -> None:
    verify(SECRET, headers(ts=NOW - 30), BODY, tolerance_seconds=30, now=NOW)
    with pytest.raises(WebhookVerificationError):
        verify(SECRET, headers(ts=NOW - 31), BODY, tolerance_seconds=30, now=NOW)


def test_uses_the_clock_when_now_is_not_given() -> None:
    with pytest.raises(WebhookVerificationError) as exc:
        verify(SECRET, headers(ts=NOW), BODY)  # NOW is in 2023
    assert reason(exc) == "timestamp_too_old"


def test_rejects_tampered_body() -> None:
    with pytest.raises(WebhookVerificationError) as exc:
        verify(SECRET, headers(), BODY.replace(b"r-1", b"r-2"), now=NOW)
    assert reason(exc) == "no_matching_signature"


def test_rejects_wrong_secret() -> None:
    with pytest.raises(WebhookVerificationError) as exc:
        verify(OTHER_SECRET, headers(), BODY, now=NOW)
    assert reason(exc) == "no_matching_signature"


def test_rejects_changed_id_or_timestamp() -> None:
    for field, value in [("webhook-id", "msg_other"), ("webhook-timestamp", str(NOW + 1))]:
        hdrs = headers() | {field: value}
        with pytest.raises(WebhookVerificationError):
            verify(SECRET, hdrs, BODY, now=NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_rejects_missing_header(missing: str) -> None:
    hdrs = headers()
    del hdrs[missing]
    with pytest.raises(WebhookVerificationError) as exc:
        verify(SECRET, hdrs, BODY, now=NOW)
    assert reason(exc) == "missing_header"
    assert missing in str(exc.value)


def test_rejects_empty_header() -> None:
    with pytest.raises(WebhookVerificationError) as exc:
        verify(SECRET, headers() | {"webhook-signature": "  "}, BODY, now=NOW)
    assert reason(exc) == "missing_header"


@pytest.mark.parametrize("value", ["hello", "1.7e9", "-1700000000", "１７００", "9" * 5000])
def test_rejects_non_integer_timestamp(value: str) -> None:
    with pytest.raises(WebhookVerificationError) as exc:
        verify(SECRET, headers() | {"webhook-timestamp": value}, BODY, now=NOW)
    assert reason(exc) == "invalid_timestamp"


def test_accepts_rotated_multi_signature_header_with_either_secret() -> None:
    hdrs = build_headers([OTHER_SECRET, SECRET], MSG_ID, NOW, BODY)
    assert len(hdrs["webhook-signature"].split()) == 2
    verify(SECRET, hdrs, BODY, now=NOW)
    verify(OTHER_SECRET, hdrs, BODY, now=NOW)


def test_multi_signature_header_skips_junk_and_other_versions() -> None:
    valid = headers()["webhook-signature"]
    junk = ["garbage", "v1,not-base64!", "v1a," + valid[3:], "v2," + valid[3:]]
    verify(SECRET, headers() | {"webhook-signature": " ".join([*junk, valid])}, BODY, now=NOW)
    with pytest.raises(WebhookVerificationError):
        verify(SECRET, headers() | {"webhook-signature": " ".join(junk)}, BODY, now=NOW)


def test_bad_secret_is_a_configuration_error_not_a_verification_failure() -> None:
    with pytest.raises(ValueError) as exc:
        verify("whsec_???", headers(), BODY, now=NOW)
    assert not isinstance(exc.value, WebhookVerificationError)


def test_verifier_module_is_stdlib_only() -> None:
    import ast
    import sys
    from pathlib import Path

    import carepath_runtime.webhook_verify as module

    tree = ast.parse(Path(module.__file__).read_text())
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    roots = {name.split(".")[0] for name in imported}
    assert roots <= set(sys.stdlib_module_names) | {"__future__"}


def test_accepts_the_standard_webhooks_reference_vector() -> None:
    # standard-webhooks/standard-webhooks: libraries/python/tests/test_webhooks.py
    hdrs = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    body = b'{"test": 2432232314}'
    verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", hdrs, body, now=1614265330)


@given(st.binary(max_size=512), st.integers(0, 2**40), st.data())
def test_round_trip_and_any_flipped_byte_is_rejected(
    body: bytes, ts: int, data: st.DataObject
) -> None:
    hdrs = build_headers(SECRET, MSG_ID, ts, body)
    verify(SECRET, hdrs, body, now=ts)
    if body:
        i = data.draw(st.integers(0, len(body) - 1))
        tampered = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
        with pytest.raises(WebhookVerificationError):
            verify(SECRET, hdrs, tampered, now=ts)
