"""The garbage collector and a long-running service.

A service's heap after start-up (imported modules, pydantic's validators, FastAPI's routes,
the clients) is about 100,000 objects that live as long as the process. Python's full
(generation 2) collection walks all of them: 23-36 ms per collection, measured in-process on
the pathway's app and in the services' start-up (``python -m benchmarks.run --profile-rate
10``, section ``gc_gen2``). A full collection under traffic is a pause of that length on
whichever event is in flight.

:func:`freeze_startup_heap` collects once, then moves everything alive into the permanent
generation (:func:`gc.freeze`), which later collections skip. Objects created afterwards are
collected as before; only start-up's own objects are never re-examined, and those stay
reachable for the life of the process anyway. On the pathway's app a full collection then
takes under 0.1 ms instead of 23-33 ms.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect, then exempt every surviving object from later collections; return how many
    objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
