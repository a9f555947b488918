"""Which failures are waited out, how causes are written, how library logs are limited."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from aiokafka import errors as kafka_errors
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from redis import exceptions as redis_errors

from carepath_runtime.consumer import RetryConfig, transient_delay
from carepath_runtime.error_text import describe, scrub
from carepath_runtime.log import RateLimiter
from carepath_runtime.transient import is_transient, transient_dependency


@pytest.mark.parametrize("exc, dep", [
    (redis_errors.ConnectionError("Error 111 connecting"), "redis"),
    (redis_errors.TimeoutError("Timeout reading"), "redis"),
    (redis_errors.BusyLoadingError("Redis is loading the dataset in memory"), "redis"),
    (redis_errors.ReadOnlyError("READONLY You can't write against a read only replica"),
     "redis"),
    (redis_errors.ResponseError("LOADING Redis is loading the dataset in memory"), "redis"),
    (kafka_errors.KafkaConnectionError("no broker"), "kafka"),
    (kafka_errors.KafkaTimeoutError(), "kafka"),
    (kafka_errors.NotLeaderForPartitionError(), "kafka"),
    (kafka_errors.RequestTimedOutError(), "kafka"),
    (kafka_errors.NotEnoughReplicasError(), "kafka"),
    (kafka_errors.OutOfOrderSequenceNumber(), "kafka"),
    (ValueError("bad"), None),
    (redis_errors.ResponseError("WRONGTYPE Operation against a key"), None),
    (KeyError("x"), None),
])
def test_dependency_named(exc: BaseException, dep: str | None) -> None:
    assert transient_dependency(exc) == dep


def test_a_wrapped_outage_is_still_an_outage() -> None:
    try:
        try:
            raise redis_errors.ConnectionError("Error 111")
        except redis_errors.ConnectionError as inner:
            raise RuntimeError("could not fold") from inner
    except RuntimeError as outer:
        assert transient_dependency(outer) == "redis"
    group = ExceptionGroup("many", [ValueError("x"), kafka_errors.KafkaTimeoutError()])
    assert transient_dependency(group) == "kafka"
    assert is_transient(TimeoutError())
    assert not is_transient(ValueError("x"))


@given(st.integers(min_value=1, max_value=10_000), st.integers(1, 1000), st.integers(1, 10_000))
def test_transient_backoff_is_capped_and_grows(tries: int, base: int, cap: int) -> None:
    retry = RetryConfig(transient_backoff_ms=base, transient_max_backoff_ms=cap)
    delay = transient_delay(tries, retry)
    assert 0 < delay <= cap / 1000
    assert transient_delay(tries + 1, retry) >= delay


class _Model(BaseModel):
    age: int
    region: str


def test_validation_causes_name_fields_never_values() -> None:
    secret = "Jane Doe, born 1950-02-03"
    with pytest.raises(ValidationError) as info:
        _Model.model_validate({"age": secret, "region": 12345})
    text = describe(info.value)
    assert secret not in text and "12345" not in text
    assert "age" in text and "region" in text
    assert "input_value" not in str(describe(RuntimeError(str(info.value))))
    wrapped = RuntimeError("envelope")
    wrapped.__cause__ = info.value
    assert secret not in describe(wrapped)
    assert scrub("x [type=int_parsing, input_value='Jane', input_type=str]") == \
        "x [type=int_parsing, [value withheld]]"


def test_rate_limiter_one_line_per_message_per_interval_with_suppressed_count() -> None:
    limiter = RateLimiter(interval_s=3600)
    assert limiter.admit("aiokafka", "Unable connect to node %s") == (True, 0)
    for _ in range(999):
        assert limiter.admit("aiokafka", "Unable connect to node %s") == (False, 0)
    assert limiter.admit("aiokafka", "another message") == (True, 0)
    limiter.interval_s = 1e-9  # the interval is over: the next line says what was dropped
    ok, suppressed = limiter.admit("aiokafka", "Unable connect to node %s")
    assert ok and suppressed == 999


@pytest.fixture()
def restore_logging() -> Iterator[None]:
    import structlog

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
    structlog.reset_defaults()


def test_library_records_become_rate_limited_json(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    import json

    from carepath_runtime.log import configure_logging

    configure_logging("test", "INFO", rate_interval_s=3600)
    lib = logging.getLogger("aiokafka.conn")
    for i in range(50):
        lib.error("Unable connect to node with id %s: %s", 1, f"attempt {i}")
    logging.getLogger("asyncio").warning("Task was destroyed but it is pending!")
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    kafka_lines = [x for x in lines if x.get("logger") == "aiokafka.conn"]
    assert len(kafka_lines) == 1
    assert kafka_lines[0]["level"] == "error" and kafka_lines[0]["service"] == "test"
    assert any(x.get("logger") == "asyncio" for x in lines)
