"""Load generator, run as its own process: N client threads POSTing JSON bodies
round-robin for a fixed duration over persistent connections.

Prints one JSON line: requests, errors, status counts, throughput, p50/p99 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import threading
import time
from urllib.parse import urlsplit


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q / 100 * (len(ordered) - 1)))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", required=True, help="JSON file: a list of [token, body] pairs")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument(
        "--cycle", action="store_true", help="start the bodies over when they run out (for an app that only reads them)"
    )
    args = parser.parse_args()
    pairs = json.load(open(args.bodies))
    target = urlsplit(args.url)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = [0]
    lock = threading.Lock()
    next_index = [0]
    stop_at = time.monotonic() + args.duration

    def client() -> None:
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        mine: list[float] = []
        while time.monotonic() < stop_at:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= len(pairs):
                if not args.cycle:
                    break
                i %= len(pairs)
            token, body = pairs[i]
            raw = json.dumps(body)
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
            started = time.perf_counter()
            try:
                conn.request("POST", target.path, raw, headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except Exception:
                conn.close()
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                with lock:
                    errors[0] += 1
                continue
            mine.append((time.perf_counter() - started) * 1000)
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
        with lock:
            latencies.extend(mine)
        conn.close()

    began = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    print(
        json.dumps(
            {
                "requests": len(latencies),
                "errors": errors[0],
                "statuses": statuses,
                "seconds": round(elapsed, 3),
                "rps": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
                "p50_ms": round(percentile(latencies, 50), 2),
                "p99_ms": round(percentile(latencies, 99), 2),
                "mean_ms": round(statistics.fmean(latencies), 2) if latencies else None,
            }
        )
    )


if __name__ == "__main__":
    main()
