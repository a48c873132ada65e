"""Process time per phase of a dispense request, in-process (``bench.profile``'s requests on the
database a bench run left), with a timer around each phase: where the CPU of a request goes,
without a profiler's overhead on every call.

    python -m bench.phases [--requests 600]
"""

from __future__ import annotations

import argparse
import collections
import functools
import sys
import time
from typing import Any

PHASES: list[tuple[str, str, str]] = [
    # (module, attribute path, label)
    ("flask", "Flask.wsgi_app", "the whole request (Flask)"),
    ("rems_service.auth", "actor_for_token", "authentication"),
    ("flask_limiter", "Limiter._check_request_limit", "rate limits"),
    ("webargs.core", "Parser.parse", "webargs and marshmallow"),
    ("flask", "Flask.finalize_request", "after-request hooks"),
    ("rems_service.services.dispenses", "_decide", "the decision's unit of work"),
    ("rems_service.db.decision_sql", "lock_by_number", "  the lock"),
    ("rems_service.db.decision_sql", "read_dispense_facts", "  the facts"),
    ("rems_service.db.decision_sql", "lock_head", "  the head"),
    ("rems_service.db.decision_sql", "write", "  the write"),
    ("rems_service.db.uow", "UnitOfWork.commit", "  the commit (with the write)"),
    ("rems_service.db.repository", "DecisionWrite.of", "  the snapshot"),
    ("rems_service.db.audit_chain", "prepare", "  the entry's content and digest"),
    ("rems_service.db.audit_chain", "PreparedEntry.sealed", "  the entry's hash and MAC"),
]


def _timed(owner: Any, name: str, label: str, spent: dict[str, float]) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent[label] += time.process_time() - started

    setattr(owner, name, timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600)
    args = parser.parse_args()
    spent: dict[str, float] = collections.defaultdict(float)
    import importlib

    for module, path, label in PHASES:
        owner: Any = importlib.import_module(module)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        _timed(owner, name, label, spent)
    from bench import profile

    sys.argv = [sys.argv[0], "--requests", str(args.requests)]
    profile.main()
    n = args.requests + 20  # every request profile.main makes (its warm-up ones too)
    for _module, _path, label in PHASES:
        print(f"{label:36s} {spent[label] / n * 1000:7.3f} ms per request (process time)")


if __name__ == "__main__":
    main()
