"""Measuring side by side on a noisy machine: CPU counters of a served app and of its
PostgreSQL backends, ratios over interleaved rounds, and the raw read-and-hash rate
that audit verification is compared with.

Throughput moves with whatever else the machine is doing; CPU time spent per request
moves far less, and a ratio of two figures measured seconds apart (B S B S B S) cancels
most of the drift that a ratio of two figures measured minutes apart does not.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psutil
from sqlalchemy import text
from sqlalchemy.engine import Engine


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds (user + system) so far of a gunicorn master's workers and of the
    PostgreSQL backends whose ``application_name`` is the app's, by process id."""

    web: dict[int, float]
    database: dict[int, float]


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def cpu_sample(master_pid: int, engine: Engine, application_name: str) -> CpuSample:
    web: dict[int, float] = {}
    master = psutil.Process(master_pid)
    for process in [master, *master.children(recursive=True)]:
        try:
            web[process.pid] = _cpu(process)
        except psutil.NoSuchProcess:
            continue
    with engine.connect() as conn:
        pids = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"), {"name": application_name}
        ).scalars()
        database: dict[int, float] = {}
        for pid in pids:
            try:
                database[pid] = _cpu(psutil.Process(pid))
            except psutil.NoSuchProcess:
                continue
    return CpuSample(web, database)


def cpu_spent(before: CpuSample, after: CpuSample) -> tuple[float, float]:
    """CPU seconds spent between two samples: (web workers, database backends). A process
    that appeared in between counts from zero; one that ended in between is lost, which is
    why the apps under test keep their pooled connections (no backend ends mid-round)."""

    def spent(a: dict[int, float], b: dict[int, float]) -> float:
        return sum(max(0.0, seconds - a.get(pid, 0.0)) for pid, seconds in b.items())

    return spent(before.web, after.web), spent(before.database, after.database)


def ratio_summary(values: Sequence[float]) -> dict[str, Any]:
    """The median of per-round ratios with their spread (min, max, and max/min − 1)."""
    ordered = sorted(values)
    low, high = ordered[0], ordered[-1]
    return {
        "median": round(statistics.median(ordered), 3),
        "min": round(low, 3),
        "max": round(high, 3),
        "spread": round(high / low - 1, 3) if low > 0 else None,
        "rounds": [round(v, 3) for v in values],
    }


def interleave(rounds: int, *measures: Callable[[int], dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Run the measures alternately (A B A B ...) ``rounds`` times; results by measure."""
    results: list[list[dict[str, Any]]] = [[] for _ in measures]
    for round_index in range(rounds):
        for i, measure in enumerate(measures):
            results[i].append(measure(round_index))
    return results


def raw_read_and_hash(engine: Engine, batch: int = 10_000) -> tuple[int, float]:
    """Read every audit entry whole (the row as PostgreSQL's own text, in seq order, in
    keyset batches as the verifier reads) and SHA-256 each: the least work that reads and
    hashes the same rows, which no verification can beat. Returns (rows, seconds)."""
    import time

    rows, last = 0, 0
    started = time.perf_counter()
    with engine.connect() as conn:
        while True:
            result = conn.execute(
                text("SELECT e.seq, e::text FROM audit_entries e WHERE e.seq > :last ORDER BY e.seq LIMIT :n"),
                {"last": last, "n": batch},
            ).all()
            if not result:
                break
            for _seq, whole in result:
                hashlib.sha256(whole.encode()).hexdigest()
            rows += len(result)
            last = result[-1][0]
    return rows, time.perf_counter() - started
