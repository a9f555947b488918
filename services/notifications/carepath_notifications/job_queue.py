"""The durable delivery job queue in Redis: one job per (event, subscription).

Keys (``P`` is ``<namespace>:{<namespace>:notify}``; every change is one Lua script, so
atomic):

* ``P:job:<id>``        hash: the job (see :class:`DeliveryJob`); id = ``<subscription>:<event>``
* ``P:due:<endpoint>``  sorted set: pending job ids of an endpoint by next-attempt time (ms)
* ``P:inflight:<ep>``   sorted set: claimed job ids of an endpoint by lease expiry
* ``P:ready``           sorted set: endpoints that have a due job *and* a free slot, scored by
                        their earliest due time (the index a claim walks)
* ``P:leases``          sorted set: every claimed job id by lease expiry (for the reaper)
* ``P:dead``            sorted set: dead-lettered job ids by time of death
* ``P:outbox``          list: attempt/failed/redriven events waiting to be published

Enqueue is idempotent (a job id that exists is left alone). A claim takes due jobs of ready
endpoints, at most ``limit`` in flight per endpoint, and leases them to its owner; the owner
renews its leases while it works, and the reaper puts the jobs of a dead owner (expired
lease) back on the due set. Completing records the attempt, moves the job to delivered (with
a TTL: the dedup ledger), back to due (retry) or to dead, appends its events to the outbox in
the same step, and may claim the endpoint's next due job at once (so one endpoint's queue
drains without a round trip through the dispatcher). Several completions go in one call
(:meth:`JobQueue.complete_many`), each applied as it would be alone.

Redis Cluster: every key of the queue carries the one hash tag ``{<namespace>:notify}``, so
the whole queue lives in one slot and every script, which computes job and endpoint keys from
``P``, stays on one node. Each call declares ``P:ready`` as its key so a cluster client routes
it to that node. (The price: the queue of a namespace is served by one shard; a queue per
endpoint tag would need a cross-endpoint ready index, which is what this design keeps in one
place.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis

from carepath_notifications.domain.jobs import DeliveryJob
from carepath_runtime.kafka_broker import OutboundEvent
from carepath_runtime.redis_client import key as rkey
from carepath_runtime.redis_client import tag

DELIVERED_TTL_S = 30 * 86400

_PRELUDE = """
local P = ARGV[1]
local LIMIT = tonumber(ARGV[2])
local function refresh(ep)
  local busy = redis.call('ZCARD', P..':inflight:'..ep)
  local first = redis.call('ZRANGE', P..':due:'..ep, 0, 0, 'WITHSCORES')
  if #first == 0 or busy >= LIMIT then
    redis.call('ZREM', P..':ready', ep)
  else
    redis.call('ZADD', P..':ready', first[2], ep)
  end
end
local function claim_one(ep, id, lease_until, owner)
  redis.call('ZREM', P..':due:'..ep, id)
  redis.call('ZADD', P..':inflight:'..ep, lease_until, id)
  redis.call('ZADD', P..':leases', lease_until, id)
  redis.call('HSET', P..':job:'..id, 'status', 'inflight', 'owner', owner)
  return redis.call('HGETALL', P..':job:'..id)
end
"""

# ARGV: P, limit, n_jobs, then per job: id, endpoint, due_ms, n_fields, fields...
# (one call per consumed event, however many subscriptions it matched: one round trip, and
# no SCRIPT EXISTS check as a pipeline of script calls would send first). Returns how many
# jobs were new.
_ENQUEUE = _PRELUDE + """
local i, created, touched = 4, 0, {}
for _ = 1, tonumber(ARGV[3]) do
  local id, ep, due, nf = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local jk = P..':job:'..id
  if redis.call('EXISTS', jk) == 0 then
    redis.call('HSET', jk, unpack(ARGV, i + 4, i + 3 + nf))
    redis.call('ZADD', P..':due:'..ep, due, id)
    touched[ep] = true
    created = created + 1
  end
  i = i + 4 + nf
end
for ep in pairs(touched) do refresh(ep) end
return created
"""

# Returns {jobs, earliest due time among ready endpoints afterwards ('' if none)}: the
# dispatcher's next wake-up comes with the claim, not from a round trip of its own.
_CLAIM = _PRELUDE + """
local now, max_jobs, lease_until, owner = ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]
local out = {}
if max_jobs <= 0 then return {out, ''} end
local eps = redis.call('ZRANGEBYSCORE', P..':ready', '-inf', now, 'LIMIT', 0, max_jobs)
for _, ep in ipairs(eps) do
  local room = max_jobs - #out
  if room <= 0 then break end
  local free = LIMIT - redis.call('ZCARD', P..':inflight:'..ep)
  if free > 0 then
    local ids = redis.call('ZRANGEBYSCORE', P..':due:'..ep, '-inf', now, 'LIMIT', 0,
                           math.min(free, room))
    for _, id in ipairs(ids) do
      if redis.call('EXISTS', P..':job:'..id) == 1 then
        out[#out + 1] = claim_one(ep, id, lease_until, owner)
      else
        redis.call('ZREM', P..':due:'..ep, id)
      end
    end
  end
  refresh(ep)
end
local first = redis.call('ZRANGE', P..':ready', 0, 0, 'WITHSCORES')
return {out, first[2] or ''}
"""

# ARGV: P, limit, ttl, n, then per completion: id, owner, kind, now, attempt, next_ms,
#       status, error, reason, chain_lease_until ('' = no chain), n_events, events...
# Returns one {applied, next job or {}} per completion, in order. Several completions (the
# attempts that finished while the previous call was on its way) share one round trip; each
# is applied exactly as it would be alone, one after the other.
_COMPLETE = _PRELUDE + """
local ttl = tonumber(ARGV[3])
local function complete_one(id, owner, kind, now, attempt, next_ms, status_code, err, reason,
                            chain_lease, first_event, n_events)
  local jk = P..':job:'..id
  if redis.call('EXISTS', jk) == 0 then return {0, {}} end
  local ep = redis.call('HGET', jk, 'ep')
  local status = redis.call('HGET', jk, 'status')
  local holder = redis.call('HGET', jk, 'owner')
  local applied = 0
  if kind == 'delivered' then
    if status ~= 'delivered' then
      redis.call('HSET', jk, 'status', 'delivered', 'attempts', attempt,
                 'last_status', status_code, 'last_error', '', 'delivered_ms', now, 'owner', '')
      redis.call('ZREM', P..':due:'..ep, id)
      redis.call('ZREM', P..':inflight:'..ep, id)
      redis.call('ZREM', P..':leases', id)
      redis.call('ZREM', P..':dead', id)
      redis.call('EXPIRE', jk, ttl)
      applied = 1
    end
  elseif status == 'inflight' and holder == owner then
    redis.call('ZREM', P..':inflight:'..ep, id)
    redis.call('ZREM', P..':leases', id)
    redis.call('HSET', jk, 'attempts', attempt, 'last_status', status_code, 'last_error', err,
               'owner', '')
    if kind == 'retry' then
      redis.call('HSET', jk, 'status', 'pending', 'next_ms', next_ms)
      redis.call('ZADD', P..':due:'..ep, next_ms, id)
    else
      redis.call('HSET', jk, 'status', 'dead', 'dead_ms', now, 'dead_reason', reason)
      redis.call('ZADD', P..':dead', now, id)
    end
    applied = 1
  end
  if applied == 1 and n_events > 0 then
    redis.call('RPUSH', P..':outbox', unpack(ARGV, first_event, first_event + n_events - 1))
  end
  refresh(ep)
  local nxt = {}
  if chain_lease ~= '' and LIMIT - redis.call('ZCARD', P..':inflight:'..ep) > 0 then
    local ids = redis.call('ZRANGEBYSCORE', P..':due:'..ep, '-inf', now, 'LIMIT', 0, 1)
    if #ids == 1 and redis.call('EXISTS', P..':job:'..ids[1]) == 1 then
      nxt = claim_one(ep, ids[1], chain_lease, owner)
      refresh(ep)
    end
  end
  return {applied, nxt}
end
local out, i = {}, 5
for _ = 1, tonumber(ARGV[4]) do
  local n_events = tonumber(ARGV[i + 10])
  out[#out + 1] = complete_one(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4],
                               ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8],
                               ARGV[i + 9], i + 11, n_events)
  i = i + 11 + n_events
end
return out
"""

# ARGV: P, limit, lease_until, owner, ids...
_RENEW = _PRELUDE + """
local lease_until, owner = ARGV[3], ARGV[4]
local renewed = 0
for i = 5, #ARGV do
  local id = ARGV[i]
  local jk = P..':job:'..id
  if redis.call('HGET', jk, 'owner') == owner and redis.call('ZSCORE', P..':leases', id) then
    local ep = redis.call('HGET', jk, 'ep')
    redis.call('ZADD', P..':leases', lease_until, id)
    redis.call('ZADD', P..':inflight:'..ep, lease_until, id)
    renewed = renewed + 1
  end
end
return renewed
"""

# ARGV: P, limit, now, batch
_REAP = _PRELUDE + """
local now, batch = ARGV[3], tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', P..':leases', '-inf', now, 'LIMIT', 0, batch)
for _, id in ipairs(ids) do
  redis.call('ZREM', P..':leases', id)
  local jk = P..':job:'..id
  local ep = redis.call('HGET', jk, 'ep')
  if ep then
    redis.call('ZREM', P..':inflight:'..ep, id)
    if redis.call('HGET', jk, 'status') == 'inflight' then
      redis.call('HINCRBY', jk, 'reclaimed', 1)
      redis.call('HSET', jk, 'status', 'pending', 'owner', '', 'next_ms', now)
      redis.call('ZADD', P..':due:'..ep, now, id)
    end
    refresh(ep)
  end
end
return #ids
"""

# ARGV: P, limit, now, owner, ids...  (a stopping owner hands back jobs it will not attempt)
_RELEASE = _PRELUDE + """
local now, owner = ARGV[3], ARGV[4]
local n = 0
for i = 5, #ARGV do
  local id = ARGV[i]
  local jk = P..':job:'..id
  if redis.call('HGET', jk, 'owner') == owner and redis.call('HGET', jk, 'status') == 'inflight'
  then
    local ep = redis.call('HGET', jk, 'ep')
    redis.call('ZREM', P..':leases', id)
    redis.call('ZREM', P..':inflight:'..ep, id)
    redis.call('HSET', jk, 'status', 'pending', 'owner', '', 'next_ms', now)
    redis.call('ZADD', P..':due:'..ep, now, id)
    refresh(ep)
    n = n + 1
  end
end
return n
"""

# ARGV: P, limit, now, id, expected_redriven, event_json
_REDRIVE = _PRELUDE + """
local now, id, expected, event = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local jk = P..':job:'..id
if redis.call('HGET', jk, 'status') ~= 'dead' then return 0 end
if redis.call('HGET', jk, 'redriven') ~= expected then return -1 end
local ep = redis.call('HGET', jk, 'ep')
redis.call('HINCRBY', jk, 'redriven', 1)
redis.call('HSET', jk, 'status', 'pending', 'attempts', 0, 'reclaimed', 0, 'next_ms', now,
           'owner', '', 'dead_ms', '', 'dead_reason', '')
redis.call('ZREM', P..':dead', id)
redis.call('ZADD', P..':due:'..ep, now, id)
refresh(ep)
redis.call('RPUSH', P..':outbox', event)
return 1
"""

_TRIM_OUTBOX = """
local n = tonumber(ARGV[1])
if redis.call('LINDEX', KEYS[1], 0) == ARGV[2] and redis.call('LINDEX', KEYS[1], n - 1) == ARGV[3]
then
  redis.call('LTRIM', KEYS[1], n, -1)
  return 1
end
return 0
"""


@dataclass(frozen=True)
class Completion:
    """What :meth:`JobQueue.complete` did: whether the result was recorded, and the next job
    of the same endpoint it claimed for the caller (if asked and one was due)."""

    applied: bool
    next_job: DeliveryJob | None


@dataclass(frozen=True)
class CompletionRequest:
    """One attempt's outcome to record (:meth:`JobQueue.complete_many`): ``kind`` is
    ``delivered``, ``retry`` (due again at ``next_ms``) or ``dead``; ``events`` go to the
    outbox in the same step; with ``chain_lease_until_ms``, the endpoint's next due job is
    claimed for ``owner`` under that lease."""

    job: DeliveryJob
    owner: str
    kind: str
    now_ms: int
    attempt: int
    next_ms: int = 0
    status_code: int | None = None
    error: str | None = None
    reason: str | None = None
    events: Sequence[OutboundEvent] = ()
    chain_lease_until_ms: int | None = None

    def args(self) -> list[Any]:
        payloads = [orjson.dumps(e.to_json()) for e in self.events]
        return [
            self.job.id, self.owner, self.kind, self.now_ms, self.attempt, self.next_ms,
            "" if self.status_code is None else self.status_code, (self.error or "")[:500],
            (self.reason or "")[:500],
            "" if self.chain_lease_until_ms is None else self.chain_lease_until_ms,
            len(payloads), *payloads,
        ]


@dataclass(frozen=True)
class Claimed:
    """What :meth:`JobQueue.claim_due` leased, and when the earliest endpoint that is ready
    (a due job and a free slot) has its next job due (ms; None when none is ready)."""

    jobs: list[DeliveryJob]
    next_due_ms: int | None


class JobQueue:
    def __init__(self, redis: aioredis.Redis, namespace: str, endpoint_limit: int = 1) -> None:
        if endpoint_limit < 1:
            raise ValueError("endpoint_limit must be at least 1")
        self._redis = redis
        self.prefix = rkey(namespace, tag(f"{namespace}:notify"))
        self._route = [f"{self.prefix}:ready"]  # KEYS[1]: routes each script to the slot
        self.limit = endpoint_limit
        self._scripts = {
            name: redis.register_script(src)
            for name, src in {
                "enqueue": _ENQUEUE, "claim": _CLAIM, "complete": _COMPLETE, "renew": _RENEW,
                "reap": _REAP, "release": _RELEASE, "redrive": _REDRIVE, "trim": _TRIM_OUTBOX,
            }.items()
        }

    # ---- keys ------------------------------------------------------------------------------

    def job_key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    @property
    def dead_key(self) -> str:
        return f"{self.prefix}:dead"

    @property
    def outbox_key(self) -> str:
        return f"{self.prefix}:outbox"

    def _base(self) -> list[Any]:
        return [self.prefix, self.limit]

    # ---- producing -------------------------------------------------------------------------

    async def enqueue_many(self, jobs: Sequence[DeliveryJob]) -> int:
        """Add the jobs that do not exist yet (one atomic step); return how many were new."""
        if not jobs:
            return 0
        args: list[Any] = [*self._base(), len(jobs)]
        for job in jobs:
            fields = job.to_fields()
            args.extend((job.id, job.endpoint, job.next_ms, 2 * len(fields)))
            for k, v in fields.items():
                args.extend((k, v))
        return int(await self._scripts["enqueue"](keys=self._route, args=args))

    # ---- working ---------------------------------------------------------------------------

    async def claim(self, now_ms: int, max_jobs: int, lease_until_ms: int, owner: str
                    ) -> list[DeliveryJob]:
        return (await self.claim_due(now_ms, max_jobs, lease_until_ms, owner)).jobs

    async def claim_due(self, now_ms: int, max_jobs: int, lease_until_ms: int, owner: str
                        ) -> Claimed:
        """Lease up to ``max_jobs`` due jobs to ``owner``; also say when the next is due."""
        raw: Any = await self._scripts["claim"](
            keys=self._route,
            args=[*self._base(), now_ms, max_jobs, lease_until_ms, owner]
        )
        flats, next_due = raw
        return Claimed([DeliveryJob.from_fields(_pairs(flat)) for flat in flats],
                       int(float(next_due)) if next_due not in (b"", "", None) else None)

    async def complete(
        self,
        job: DeliveryJob,
        *,
        owner: str,
        kind: str,
        now_ms: int,
        attempt: int,
        next_ms: int = 0,
        status_code: int | None = None,
        error: str | None = None,
        reason: str | None = None,
        events: Sequence[OutboundEvent] = (),
        chain_lease_until_ms: int | None = None,
    ) -> Completion:
        [done] = await self.complete_many([CompletionRequest(
            job, owner, kind, now_ms, attempt, next_ms, status_code, error, reason, events,
            chain_lease_until_ms,
        )])
        return done

    async def complete_many(self, requests: Sequence[CompletionRequest]) -> list[Completion]:
        """Record several attempts in one atomic step (one round trip), in order; one
        :class:`Completion` each. A job another owner holds now (its lease ran out and it was
        claimed again) is left alone (``applied`` false), except a delivery, which always
        counts: the receiver has the notice."""
        if not requests:
            return []
        args: list[Any] = [*self._base(), DELIVERED_TTL_S, len(requests)]
        for request in requests:
            args.extend(request.args())
        raw: Any = await self._scripts["complete"](keys=self._route, args=args)
        return [Completion(bool(int(applied)),
                           DeliveryJob.from_fields(_pairs(nxt)) if nxt else None)
                for applied, nxt in raw]

    async def renew(self, job_ids: Sequence[str], owner: str, lease_until_ms: int) -> int:
        if not job_ids:
            return 0
        return int(await self._scripts["renew"](
            keys=self._route,
            args=[*self._base(), lease_until_ms, owner, *job_ids]
        ))

    async def reap(self, now_ms: int, batch: int = 200) -> int:
        """Put back on the due set the jobs whose lease expired (their worker died)."""
        return int(await self._scripts["reap"](
            keys=self._route, args=[*self._base(), now_ms, batch]
        ))

    async def release(self, job_ids: Sequence[str], owner: str, now_ms: int) -> int:
        if not job_ids:
            return 0
        return int(await self._scripts["release"](
            keys=self._route,
            args=[*self._base(), now_ms, owner, *job_ids]
        ))

    async def next_due_ms(self) -> int | None:
        """When the earliest ready endpoint's job is due (None when nothing is ready)."""
        first: Any = await self._redis.zrange(f"{self.prefix}:ready", 0, 0, withscores=True)
        return int(first[0][1]) if first else None

    # ---- reading and redriving -------------------------------------------------------------

    async def get(self, job_id: str) -> DeliveryJob | None:
        raw: Any = await self._redis.hgetall(self.job_key(job_id))
        return DeliveryJob.from_fields(raw) if raw else None

    async def dead_letters(self, limit: int = 1000) -> list[DeliveryJob]:
        ids: Any = await self._redis.zrange(self.dead_key, 0, max(limit, 1) - 1)
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(self.job_key(job_id.decode()))
            raws = await pipe.execute()
        return [DeliveryJob.from_fields(r) for r in raws if r]

    async def redrive(self, job: DeliveryJob, now_ms: int, event: OutboundEvent) -> bool:
        """Put a dead job back on the queue (attempts reset, same id and webhook-id)."""
        result = int(await self._scripts["redrive"](
            keys=self._route,
            args=[*self._base(), now_ms, job.id, job.redriven, orjson.dumps(event.to_json())]
        ))
        return result == 1

    async def counts(self) -> dict[str, int]:
        """Sizes of the dead set, the lease set and the outbox (for health and tests)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self.dead_key)
            pipe.zcard(f"{self.prefix}:leases")
            pipe.llen(self.outbox_key)
            dead, leased, outbox = await pipe.execute()
        return {"dead": int(dead), "inflight": int(leased), "outbox": int(outbox)}

    # ---- outbox ----------------------------------------------------------------------------

    async def outbox_peek(self, batch: int = 200) -> list[bytes]:
        raw: Any = await self._redis.lrange(self.outbox_key, 0, batch - 1)
        return list(raw)

    async def outbox_trim(self, entries: Sequence[bytes]) -> bool:
        """Drop ``entries`` from the head of the outbox if they are still there.

        Two flushers racing publish the same events twice (harmless: their ids are
        deterministic) but never trim events that were not published.
        """
        if not entries:
            return True
        done = await self._scripts["trim"](
            keys=[self.outbox_key], args=[len(entries), entries[0], entries[-1]]
        )
        return bool(int(done))


def _pairs(flat: Sequence[Any]) -> dict[bytes | str, bytes | str]:
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def decode_outbox_entry(raw: bytes) -> OutboundEvent:
    return OutboundEvent.from_json(orjson.loads(raw))
