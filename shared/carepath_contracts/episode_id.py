"""The one episode-id rule of every service (intake, pathway, referrals, the stream, FHIR).

An episode id is 1 to 128 characters: a letter or digit, then letters, digits and
``. _ : -``. No ``/``, no blanks, nothing that needs escaping in a URL path, a Redis key or a
Kafka key. A present id that breaks the rule (``""``, ``"   "``, ``"a/b"``...) is refused with
422; it is never replaced. Only an *absent* (or ``null``) ``episode_id`` on ``POST /episodes``
gets one derived by intake (the contract makes the field optional).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

EPISODE_ID_MAX = 128
EPISODE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
EPISODE_ID_RULE = (
    "1 to 128 characters: a letter or digit, then letters, digits, '.', '_', ':' or '-'"
)
_COMPILED = re.compile(EPISODE_ID_PATTERN)

EpisodeId = Annotated[
    str, StringConstraints(pattern=EPISODE_ID_PATTERN, max_length=EPISODE_ID_MAX, strict=True)
]
"""A model field holding an episode id under the rule."""


def is_episode_id(value: object) -> bool:
    return isinstance(value, str) and _COMPILED.fullmatch(value) is not None


# Referral ids are derived (UUIDs); the same characters and length bound them.
REFERRAL_ID_PATTERN = EPISODE_ID_PATTERN
