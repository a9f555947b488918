"""A namespace of one test module that other sessions' end-of-run clean-up leaves alone.

``tests/conftest.py`` drops, at the end of a session, the generated namespaces (letters then
8-12 hex digits) that appeared during it; on a broker shared by several sessions that can
include another session's live namespace. A name ending in a non-hex letter is outside that
pattern, so the module that makes one drops it itself (:func:`drop_namespace`).
"""

from __future__ import annotations

import os
import uuid


def private_namespace(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}x"


async def drop_namespace(bootstrap: str, redis_url: str, ns: str) -> None:
    """Delete the namespace's topics and Redis keys (unless CAREPATH_KEEP_TEST_DATA)."""
    if os.environ.get("CAREPATH_KEEP_TEST_DATA"):
        return
    import redis.asyncio as aioredis
    from aiokafka.admin import AIOKafkaAdminClient

    from carepath_contracts.topics import Topics

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([name for name, _ in Topics(ns).all()])
    finally:
        await admin.close()
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{ns}:*", count=1000)]
        for i in range(0, len(keys), 500):
            await client.delete(*keys[i : i + 500])
    finally:
        await client.aclose()
