"""Redis memory per episode: ``MEMORY USAGE`` of every key a run left in its namespace.

The shared Redis serves other engineers too, so ``INFO memory`` deltas would count their
keys; instead the run's own keys are enumerated (``SCAN MATCH <ns>:*``) and each one's
``MEMORY USAGE`` (``SAMPLES 0``: every element of a set or hash, not an estimate) is summed,
grouped by key family (the key without its trailing id, e.g. ``pathway:state``). Bytes per
episode is that total divided by the episodes the namespace processed. It includes Redis's
own per-key overhead (dictEntry, robj, SDS headers), which is what a deployment pays.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import redis.asyncio as aioredis

# The first components after the namespace that name a key family; the rest are ids.
_FAMILY_DEPTH = {"referral": 1, "attempts": 2}


def family(namespace: str, key: str) -> str:
    parts = key[len(namespace) + 1:].split(":")
    depth = _FAMILY_DEPTH.get(parts[0], 2)
    return ":".join(parts[:depth])


async def measure(redis_url: str, namespace: str, episodes: int,
                  batch: int = 500) -> dict[str, Any]:
    """Bytes per key family and per episode for the keys of ``namespace``."""
    r = aioredis.Redis.from_url(redis_url)
    by_family: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    try:
        keys: list[bytes] = [k async for k in r.scan_iter(match=f"{namespace}:*", count=1000)]
        for i in range(0, len(keys), batch):
            chunk = keys[i:i + batch]
            async with r.pipeline(transaction=False) as pipe:
                for k in chunk:
                    pipe.memory_usage(k, samples=0)
                sizes: list[Any] = await pipe.execute()
            for k, size in zip(chunk, sizes, strict=True):
                if size is None:  # deleted meanwhile
                    continue
                fam = by_family[family(namespace, k.decode())]
                fam[0] += 1
                fam[1] += int(size)
    finally:
        await r.aclose()
    total = sum(b for _, b in by_family.values())
    per_episode = round(total / episodes, 1) if episodes else None
    return {
        "method": "sum of MEMORY USAGE (SAMPLES 0) over the namespace's keys / episodes",
        "namespace": namespace,
        "episodes": episodes,
        "keys": sum(n for n, _ in by_family.values()),
        "total_bytes": total,
        "bytes_per_episode": per_episode,
        "by_family": {
            name: {"keys": n, "bytes": b,
                   "bytes_per_episode": round(b / episodes, 1) if episodes else None}
            for name, (n, b) in sorted(by_family.items(), key=lambda kv: -kv[1][1])
        },
    }
