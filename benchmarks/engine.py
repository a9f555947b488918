"""Engine: pathway evaluations per second on one core.

The parent starts ``python -m benchmarks.engine --worker`` and pins it to one core with
``os.sched_setaffinity`` before any work; the worker prints one JSON object.

Three figures, each the median of ``repeats`` timed passes over the same episode mix, after a
warm-up pass:

* ``evaluate``: ``carepath_pathway.domain.evaluate(episode, profile)`` on parsed episodes;
* ``parse_evaluate``: the episode dict validated (``parse_episode``) and then evaluated;
* ``handler_cpu``: everything the pathway hop does per message short of I/O: the body
  decoded from JSON, folded into the episode state (evaluate + reconcile), and the two
  outbound events built and serialized. This is the CPU floor of one pathway message.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from benchmarks.workload import prepare
from carepath_testkit.episodes import episode_mix


def _timed(fn: Callable[[], int], repeats: int) -> dict[str, float]:
    fn()  # warm-up
    rates: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        count = fn()
        elapsed = time.perf_counter() - start
        rates.append(count / elapsed)
    median = statistics.median(rates)
    return {
        "per_second": round(median, 1),
        "us_per_op": round(1e6 / median, 2),
        "best_per_second": round(max(rates), 1),
        "worst_per_second": round(min(rates), 1),
    }


def worker(n: int, repeats: int, seed: int) -> dict[str, Any]:
    from carepath_contracts.envelope import Envelope
    from carepath_contracts.episode import parse_episode
    from carepath_contracts.events import EpisodeSubmitted
    from carepath_contracts.topics import Topics
    from carepath_pathway.domain import evaluate, get_profile
    from carepath_pathway.episode_state import on_submitted
    from carepath_pathway.handlers import outbound_events

    profile = get_profile("seed")
    raw = episode_mix(n, seed=seed, prefix="eng")
    parsed = [parse_episode(e) for e in raw]
    prepared = [prepare(e) for e in raw]
    envelopes = [
        Envelope.from_headers(
            {k: v.decode() for k, v in p.headers(datetime.now(UTC))}
        )
        for p in prepared
    ]
    runtime: Any = SimpleNamespace(topics=Topics("bench"))
    recs = [len(evaluate(p, profile).recommendations) for p in parsed]

    def only_evaluate() -> int:
        for ep in parsed:
            evaluate(ep, profile)
        return len(parsed)

    def parse_and_evaluate() -> int:
        for ep in raw:
            evaluate(parse_episode(ep), profile)
        return len(raw)

    def handler_cpu() -> int:
        for p, env in zip(prepared, envelopes, strict=True):
            body = EpisodeSubmitted.model_validate_json(p.value)
            state, result = on_submitted(None, body.episode, profile)
            events = outbound_events(runtime, env, p.episode_id, state, result)
            _ = [e.to_json() for e in events]  # what the state store keeps
        return len(prepared)

    return {
        "episodes": n,
        "repeats": repeats,
        "mean_recommendations": round(sum(recs) / len(recs), 2),
        "mean_episode_bytes": round(sum(len(p.value) for p in prepared) / len(prepared), 1),
        "evaluate": _timed(only_evaluate, repeats),
        "parse_evaluate": _timed(parse_and_evaluate, repeats),
        "handler_cpu": _timed(handler_cpu, repeats),
    }


def run_engine(
    n: int = 5000, repeats: int = 5, seed: int = 7, core: int | None = None
) -> dict[str, Any]:
    """Run the worker in a subprocess pinned to one core; return its figures."""
    cores = sorted(os.sched_getaffinity(0))
    pin = cores[-1] if core is None else core
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.engine", "--worker", "--n", str(n),
         "--repeats", str(repeats), "--seed", str(seed), "--core", str(pin)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"engine worker failed: {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--core", type=int, default=None)
    args = parser.parse_args()
    if not args.worker:
        print(json.dumps(run_engine(args.n, args.repeats, args.seed, args.core), indent=2))
        return
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    result = worker(args.n, args.repeats, args.seed)
    result["core"] = sorted(os.sched_getaffinity(0))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
