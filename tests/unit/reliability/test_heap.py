"""A service's start-up heap is frozen: later full collections skip it."""

from __future__ import annotations

import gc

from carepath_runtime.heap import freeze_startup_heap


def test_the_start_up_heap_is_exempt_from_later_collections() -> None:
    survivor = [object() for _ in range(1000)]
    try:
        frozen = freeze_startup_heap()
        # Frozen objects can still die (the count then falls), so no equality between calls.
        assert frozen >= len(survivor) and gc.get_freeze_count() >= len(survivor)
        # What is frozen is not tracked by any generation a collection walks.
        assert not any(o is survivor for o in gc.get_objects())
        garbage: list[object] = []
        garbage.append(garbage)  # a cycle created after the freeze is still collected
        del garbage
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
    assert any(o is survivor for o in gc.get_objects())
