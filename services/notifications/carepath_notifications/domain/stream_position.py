"""SSE event ids that encode a stream position: the next offset to read per topic-partition.

The live stream interleaves records from several partitions of two compacted topics
(pathway status, care plans). An event's id is the whole position *after* that event: for
every partition read so far, the offset of the next record. Resuming with it as
``Last-Event-ID`` seeks each partition there, so every record already sent lies before the
position (no repeat) and every record not yet sent lies at or after it (no gap), whatever
the interleaving.

Format (``v1``): ``v1:`` then ``<topic code><partition>-<offset>`` entries joined by ``.``,
e.g. ``v1:s0-12.s3-4.c0-7``, where ``s`` is pathway status and ``c`` care plans. Partitions
not listed start at their beginning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

VERSION = "v1"
TOPIC_CODES = {"status": "s", "careplans": "c"}
_NAMES = {code: name for name, code in TOPIC_CODES.items()}
_ENTRY = re.compile(r"^([a-z])(\d{1,4})-(\d{1,19})$")
MAX_ID_LENGTH = 4096

Partition = tuple[str, int]  # (topic name: "status" | "careplans", partition)


class InvalidPosition(ValueError):
    """A Last-Event-ID that is not one of ours."""


def encode(position: Mapping[Partition, int]) -> str:
    entries = []
    for (name, partition), offset in sorted(position.items()):
        if name not in TOPIC_CODES or partition < 0 or offset < 0:
            raise ValueError(f"bad position entry {(name, partition, offset)!r}")
        entries.append(f"{TOPIC_CODES[name]}{partition}-{offset}")
    return f"{VERSION}:{'.'.join(entries)}"


def decode(value: str) -> dict[Partition, int]:
    value = value.strip()
    if len(value) > MAX_ID_LENGTH:
        raise InvalidPosition("Last-Event-ID too long")
    version, sep, rest = value.partition(":")
    if version != VERSION or not sep:
        raise InvalidPosition("Last-Event-ID is not a Carepath stream position")
    position: dict[Partition, int] = {}
    for entry in filter(None, rest.split(".")):
        match = _ENTRY.match(entry)
        if match is None or match.group(1) not in _NAMES:
            raise InvalidPosition(f"bad Last-Event-ID entry {entry[:40]!r}")
        key = (_NAMES[match.group(1)], int(match.group(2)))
        if key in position:
            raise InvalidPosition("Last-Event-ID names a partition twice")
        position[key] = int(match.group(3))
    return position


def start_offsets(
    position: Mapping[Partition, int], partitions: Iterable[Partition]
) -> dict[Partition, int]:
    """Where to start reading each partition on resume: its position, else the beginning."""
    return {p: position.get(p, 0) for p in partitions}
