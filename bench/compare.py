"""Two bench results side by side (issue 16, Must show 6: two full runs back to back give
ratios within ±15 % of each other).

    python -m bench.compare bench/results/full-run-1.json bench/results/latest.json

Prints each ratio of both runs, their relative difference (second against first) and
whether it is within ±15 %, as a Markdown table; exits 0 either way (a report, not a test).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

#: The ratios the issue's targets are stated on, with their targets.
RATIOS = (
    ("throughput_ratio", "throughput / baseline", "≥ 0.5"),
    ("p99_ratio", "p99 / baseline p99", "≤ 3"),
    ("cpu_ratio", "CPU per request / baseline", "≤ 2"),
    ("export_p99_ratio", "p99 during a full export / without", "≤ 1.5"),
    ("history_latency_ratio", "decision p50, large / small history", "≤ 1.3"),
    ("sweep_ratio", "sweep, large / small table", "≤ 2"),
    ("verify_fraction", "verification / raw read-and-hash", "≥ 0.5"),
)
TOLERANCE = 0.15


def rows(first: dict[str, Any], second: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    out = []
    for key, label, target in RATIOS:
        a, b = first.get(key), second.get(key)
        if a is None or b is None:
            out.append((label, target, str(a), str(b), "", "missing"))
            continue
        change = b / a - 1
        out.append((label, target, f"{a}", f"{b}", f"{change:+.1%}", "yes" if abs(change) <= TOLERANCE else "no"))
    return out


def markdown(first: dict[str, Any], second: dict[str, Any]) -> str:
    head = (
        f"Run 1: commit `{first.get('commit')}`, {first.get('measured_at')}; "
        f"run 2: commit `{second.get('commit')}`, {second.get('measured_at')}.\n\n"
        "| ratio | target | run 1 | run 2 | run 2 vs run 1 | within ±15 % |\n|---|---|---|---|---|---|"
    )
    return "\n".join([head, *(f"| {' | '.join(r)} |" for r in rows(first, second))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    args = parser.parse_args()
    print(markdown(json.loads(args.first.read_text()), json.loads(args.second.read_text())))


if __name__ == "__main__":
    main()
