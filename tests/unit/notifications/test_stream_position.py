"""SSE ids encode a position (next offset per topic-partition) and decode back exactly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carepath_notifications.domain.snapshot import LatestPerKey
from carepath_notifications.domain.stream_position import (
    InvalidPosition,
    decode,
    encode,
    start_offsets,
)

positions = st.dictionaries(
    st.tuples(st.sampled_from(["status", "careplans"]), st.integers(0, 999)),
    st.integers(0, 2**62),
    max_size=24,
)


@given(positions)
def test_round_trip(position: dict[tuple[str, int], int]) -> None:
    text = encode(position)
    assert "\n" not in text and "\r" not in text
    assert decode(text) == position


def test_format_is_compact_and_stable() -> None:
    assert encode({("status", 3): 4, ("status", 0): 12, ("careplans", 0): 7}) == \
        "v1:c0-7.s0-12.s3-4"
    assert encode({}) == "v1:"
    assert decode("v1:") == {}


@pytest.mark.parametrize("bad", [
    "", "12", "v2:s0-1", "v1:x0-1", "v1:s0", "v1:s-1-2", "v1:s0-1.s0-2", "v1:s0-a",
    "v1:" + "s0-1." * 2000,
])
def test_foreign_ids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidPosition):
        decode(bad)


def test_encode_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        encode({("audit", 0): 1})
    with pytest.raises(ValueError):
        encode({("status", 0): -1})


def test_unlisted_partitions_start_at_the_beginning() -> None:
    parts = [("status", 0), ("status", 1), ("careplans", 0)]
    assert start_offsets({("status", 1): 9}, parts) == {
        ("status", 0): 0, ("status", 1): 9, ("careplans", 0): 0,
    }


def test_snapshot_keeps_the_latest_per_key_and_honours_tombstones() -> None:
    snap: LatestPerKey[str] = LatestPerKey()
    snap.add("status", "e1", "e1-v1")
    snap.add("status", "e2", "e2-v1")
    snap.add("careplans", "e1", "plan-e1-v1")
    snap.add("status", "e1", "e1-v2")
    snap.add("status", "e3", "e3-v1")
    snap.add("status", "e3", None)  # tombstone
    assert snap.items() == ["e2-v1", "plan-e1-v1", "e1-v2"]
    assert len(snap) == 3
