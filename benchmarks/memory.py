"""Peak resident memory (and CPU time) of named processes, sampled on a background thread."""

from __future__ import annotations

import threading
import time
from typing import Any

import psutil

MB = 1024 * 1024


class RssSampler:
    """Samples RSS of each named pid every ``interval`` seconds; keeps first, last and peak.

    Also records each process's CPU seconds (user + system) over the sampled window and the
    machine's mean CPU use, which tells whether a run was CPU-bound or waiting on I/O.
    """

    def __init__(self, pids: dict[str, int], interval: float = 0.25) -> None:
        self._procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.first: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.last: dict[str, int] = {}
        self.cpu_first: dict[str, float] = {}
        self.cpu_last: dict[str, float] = {}
        self.samples = 0
        self._started = 0.0
        self._elapsed = 0.0
        self._machine_cpu = 0.0

    def _sample(self) -> None:
        for name, proc in self._procs.items():
            try:
                with proc.oneshot():
                    rss = int(proc.memory_info().rss)
                    cpu = proc.cpu_times()
            except psutil.Error:
                continue
            self.first.setdefault(name, rss)
            self.last[name] = rss
            self.peak[name] = max(self.peak.get(name, 0), rss)
            used = float(cpu.user + cpu.system)
            self.cpu_first.setdefault(name, used)
            self.cpu_last[name] = used
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self._interval)

    def __enter__(self) -> RssSampler:
        psutil.cpu_percent(None)
        self._started = time.monotonic()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()
        self._elapsed = time.monotonic() - self._started
        self._machine_cpu = psutil.cpu_percent(None)

    def summary(self) -> dict[str, Any]:
        return {
            "interval_s": self._interval,
            "samples": self.samples,
            "window_s": round(self._elapsed, 1),
            "machine_cpu_percent_all_cores": self._machine_cpu,
            "processes": {
                name: {
                    "start_mb": round(self.first.get(name, 0) / MB, 1),
                    "peak_mb": round(self.peak.get(name, 0) / MB, 1),
                    "end_mb": round(self.last.get(name, 0) / MB, 1),
                    "cpu_seconds": round(
                        self.cpu_last.get(name, 0.0) - self.cpu_first.get(name, 0.0), 2),
                }
                for name in self._procs
            },
        }


def find_pid(match: str) -> int | None:
    """The pid of a running process whose command line contains ``match`` (e.g. kafka.Kafka)."""
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(match in part for part in proc.info["cmdline"] or []):
                return int(proc.info["pid"])
        except psutil.Error:
            continue
    return None
