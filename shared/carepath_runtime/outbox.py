"""The bytes of a per-key outbox: the outbound records exactly as they go to Kafka.

One JSON line of (topic, key, headers, value length) per event, then the values' bytes back
to back: a value is JSON already, so it is stored as is, never escaped into a string inside
another JSON document, and published from these bytes without being encoded again.
"""

from __future__ import annotations

import orjson

from carepath_runtime.kafka_broker import OutboundEvent


def encode_outbox(events: list[OutboundEvent]) -> bytes:
    meta = orjson.dumps([[e.topic, e.key, e.headers, len(e.value)] for e in events])
    return meta + b"\n" + b"".join(e.value for e in events)


def decode_outbox(raw: bytes) -> list[OutboundEvent]:
    # orjson escapes control characters inside strings, so the first newline ends the line.
    cut = raw.index(b"\n")
    pos = cut + 1
    events = []
    for topic, key, headers, size in orjson.loads(raw[:cut]):
        events.append(OutboundEvent(topic=topic, key=key, headers=dict(headers),
                                    value=raw[pos:pos + size]))
        pos += size
    return events
