"""A steady flow of episodes into intake and the checks every kill test ends with:
no referral lost, none duplicated, every referral announced to the webhook receiver."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from carepath_testkit.episodes import random_episode
from support.episodes import expected_steps
from support.observe import received_webhooks, referrals_in_redis, wait_until


@dataclass
class Feed:
    """Posts ``episodes`` to intake URLs (round robin) from a thread, ``pause`` s apart."""

    intake_urls: list[str]
    episodes: list[dict[str, Any]]
    pause: float = 0.02
    posted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None

    @classmethod
    def of(cls, intake_urls: list[str], n: int, seed: str, prefix: str,
           pause: float = 0.02) -> Feed:
        rng = random.Random(seed)
        return cls(intake_urls, [random_episode(rng, f"{prefix}-{i:04d}") for i in range(n)],
                   pause)

    @property
    def expected(self) -> dict[str, list[str]]:
        return {ep["episode_id"]: expected_steps(ep) for ep in self.episodes}

    def start(self) -> None:
        def run() -> None:
            with httpx.Client(timeout=30) as client:
                for i, ep in enumerate(self.episodes):
                    url = self.intake_urls[i % len(self.intake_urls)]
                    for _ in range(60):  # an intake being restarted: try the next one
                        try:
                            r = client.post(f"{url}/episodes", json=ep, headers={
                                "Authorization": "Bearer dev-ehr-token",
                                "Idempotency-Key": f"flow-{ep['episode_id']}"})
                        except httpx.HTTPError as exc:
                            r = None
                            err = type(exc).__name__
                        if r is not None and r.status_code == 202:
                            self.posted.append(ep["episode_id"])
                            break
                        if r is not None and r.status_code < 500 and r.status_code != 429:
                            self.errors.append(f"{r.status_code} {r.text[:200]}")
                            break
                        err = err if r is None else str(r.status_code)
                        url = self.intake_urls[(self.intake_urls.index(url) + 1)
                                               % len(self.intake_urls)]
                        time.sleep(0.5)
                    else:
                        self.errors.append(f"gave up on {ep['episode_id']}: {err}")
                    time.sleep(self.pause)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def wait_posted(self, count: int, timeout: float) -> bool:
        return wait_until(lambda: len(self.posted) + len(self.errors) >= count, timeout)

    def join(self, timeout: float) -> None:
        assert self.thread is not None
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the feed did not finish"


@dataclass
class Outcome:
    referrals: int
    lost: dict[str, list[str]]
    duplicated: dict[str, list[str]]
    extra: dict[str, list[str]]
    webhook_counts: Counter[str]
    referral_ids: set[str]


def settle(redis_url: str, namespace: str, expected: dict[str, list[str]],
           receiver_url: str, timeout: float = 180) -> Outcome:
    """Wait until every expected referral and its webhook arrived (or ``timeout``), then
    count what was lost, duplicated or extra."""
    total = sum(len(v) for v in expected.values())

    def all_refs() -> dict[str, list[dict[str, Any]]]:
        return {ep: referrals_in_redis(redis_url, namespace, ep) for ep in expected}

    def webhooks() -> Counter[str]:
        got = received_webhooks(receiver_url)["received"]
        return Counter(str(w["event"]["data"]["referral_id"]) for w in got
                       if w["event"]["type"] == "carepath.referral.created.v1")

    done: Callable[[], bool] = lambda: (  # noqa: E731
        sum(len(v) for v in all_refs().values()) >= total and len(webhooks()) >= total)
    wait_until(done, timeout=timeout, interval=1.0)
    refs = all_refs()
    lost = {ep: sorted(set(want) - {str(r["step"]) for r in refs[ep]})
            for ep, want in expected.items()}
    dup = {ep: [s for s, n in Counter(str(r["step"]) for r in refs[ep]).items() if n > 1]
           for ep in expected}
    extra = {ep: sorted({str(r["step"]) for r in refs[ep]} - set(want))
             for ep, want in expected.items()}
    return Outcome(
        referrals=sum(len(v) for v in refs.values()),
        lost={k: v for k, v in lost.items() if v},
        duplicated={k: v for k, v in dup.items() if v},
        extra={k: v for k, v in extra.items() if v},
        webhook_counts=webhooks(),
        referral_ids={str(r["referral_id"]) for v in refs.values() for r in v},
    )
