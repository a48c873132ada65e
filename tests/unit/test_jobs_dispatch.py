"""rems_service.jobs.dispatch without Redis or a database: the inline dispatcher runs
the job function itself, the RQ dispatcher hands the function over by reference, and
the jobs package is layered one way (dispatch < handlers < relay < tasks < worker)."""

from __future__ import annotations

import ast
import inspect
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from rems_service.jobs import dispatch, handlers, tasks
from rems_service.jobs.dispatch import (
    FAILURE_TTL,
    RESULT_TTL,
    InlineDispatcher,
    ProcessRuntime,
    RQDispatcher,
    bound,
    dispatcher_for,
    job_runtime,
)
from rems_service.runtime import Runtime

JOBS = Path(dispatch.__file__).parent
#: Lowest first: a module may import only modules before it.
LAYERS = ["serialization", "dispatch", "handlers", "relay", "tasks", "worker"]


class FakeRuntime:
    """Only what the dispatchers read."""

    def __init__(self, redis_url: str | None = None):
        self.settings = {"REDIS_URL": redis_url, "QUEUE_NAME": "rems-test"}
        self.forks = 0

    @property
    def redis_url(self) -> str | None:
        return self.settings["REDIS_URL"]

    def redis(self) -> Any:
        return redis.Redis.from_url(self.redis_url) if self.redis_url else None  # connects lazily

    def after_fork(self) -> None:
        self.forks += 1


def runtime(redis_url: str | None = None) -> Runtime:
    return cast(Runtime, FakeRuntime(redis_url))


calls: list[tuple[Runtime, tuple[str, ...]]] = []


def recording_job(*ids: str) -> str:
    calls.append((job_runtime(), ids))
    return "done"


def failing_job(entity_id: str) -> None:
    raise ValueError(entity_id)


class RecordingQueue:
    def __init__(self) -> None:
        self.enqueued: list[tuple[str, Any, tuple[Any, ...], dict[str, Any]]] = []

    def enqueue(self, f: Any, *args: Any, **kwargs: Any) -> None:
        self.enqueued.append(("now", f, args, kwargs))

    def enqueue_at(self, when: datetime, f: Any, *args: Any, **kwargs: Any) -> None:
        self.enqueued.append((when.isoformat(), f, args, kwargs))


@pytest.fixture(autouse=True)
def no_calls():
    calls.clear()
    yield
    calls.clear()


def test_inline_runs_the_job_function_itself_with_its_args_and_the_runtime_bound():
    rt = runtime()
    InlineDispatcher(rt).enqueue(recording_job, "a1", "b2", job_id="job-1")
    assert calls == [(rt, ("a1", "b2"))]
    assert dispatch._bound.get() is None  # nothing stays bound after the job


def test_inline_passes_the_job_to_an_injected_runner_and_lets_its_errors_through():
    rt = runtime()
    seen: list[tuple[Any, tuple[str, ...], Runtime]] = []

    def runner(func: Any, *args: str) -> object:
        seen.append((func, args, job_runtime()))
        return func(*args)

    InlineDispatcher(rt, runner=runner).enqueue(recording_job, "x", job_id="job-x")
    assert seen == [(recording_job, ("x",), rt)] and calls == [(rt, ("x",))]
    with pytest.raises(ValueError, match="boom"):
        InlineDispatcher(rt).enqueue(failing_job, "boom", job_id="job-boom")


def test_inline_leaves_scheduled_jobs_to_the_sweeps():
    InlineDispatcher(runtime()).enqueue_at(datetime(2030, 1, 1, tzinfo=UTC), recording_job, "a", job_id="later")
    assert calls == []


def test_rq_enqueues_the_function_by_reference_with_the_job_id_and_ttls():
    queue = RecordingQueue()
    RQDispatcher(queue).enqueue(handlers.deliver_webhook, "d-1", job_id="webhook-d-1-1")
    assert queue.enqueued == [
        (
            "now",
            handlers.deliver_webhook,
            ("d-1",),
            {"job_id": "webhook-d-1-1", "result_ttl": RESULT_TTL, "failure_ttl": FAILURE_TTL},
        )
    ]
    assert calls == []


def test_rq_rounds_a_scheduled_time_up_to_whole_seconds():
    queue = RecordingQueue()
    dispatcher = RQDispatcher(queue)
    dispatcher.enqueue_at(
        datetime(2030, 1, 1, 12, 0, 0, 1, tzinfo=UTC), handlers.expire_authorization, "a", job_id="j1"
    )
    dispatcher.enqueue_at(datetime(2030, 1, 1, 12, 0, 5, tzinfo=UTC), handlers.lapse_confirmation, "d", job_id="j2")
    assert [(when, func, args) for when, func, args, _ in queue.enqueued] == [
        ("2030-01-01T12:00:01+00:00", handlers.expire_authorization, ("a",)),
        ("2030-01-01T12:00:05+00:00", handlers.lapse_confirmation, ("d",)),
    ]


def test_the_dispatcher_follows_redis_url():
    assert isinstance(dispatcher_for(runtime()), InlineDispatcher)
    assert isinstance(dispatcher_for(runtime("redis://127.0.0.1:1/0")), RQDispatcher)  # no connection is made


def test_a_job_outside_a_worker_or_an_inline_call_has_no_runtime():
    with pytest.raises(RuntimeError, match="RemsWorker"):
        ProcessRuntime().get()


def test_the_process_runtime_is_built_once_and_taken_over_after_a_fork(monkeypatch):
    built: list[Runtime] = []

    def factory() -> Runtime:
        built.append(runtime())
        return built[-1]

    process = ProcessRuntime()
    first = process.install(factory)
    assert process.get() is first and len(built) == 1
    monkeypatch.setattr(dispatch.os, "getpid", lambda: -1)  # as in a forked work horse
    assert process.get() is first and cast(FakeRuntime, first).forks == 1
    assert process.get() is first and cast(FakeRuntime, first).forks == 1  # once per process


def test_a_bound_runtime_wins_and_is_unbound_afterwards():
    outer, inner = runtime(), runtime()
    with bound(outer):
        with bound(inner):
            assert job_runtime() is inner
        assert job_runtime() is outer
    assert dispatch._bound.get() is None


def test_cron_entrypoints_take_no_required_argument():
    for job in (tasks.run_sweeps, tasks.relay):
        assert all(p.default is not p.empty for p in inspect.signature(job).parameters.values()), job


def _imports(path: Path) -> tuple[set[str], list[int]]:
    """The rems_service.jobs modules ``path`` imports, and the lines of any import not at module level."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found: set[str] = set()
    nested: list[int] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if id(node) not in top and not _under_type_checking(tree, node):
            nested.append(node.lineno)
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif node.level:  # relative: from . import x / from .x import y
            modules = [f"rems_service.jobs.{node.module or a.name}" for a in node.names]
        elif node.module == "rems_service.jobs":
            modules = [f"rems_service.jobs.{a.name}" for a in node.names]
        else:
            modules = [node.module or ""]
        found |= {m.split(".")[2] for m in modules if m.startswith("rems_service.jobs.")}
    return found, nested


def _under_type_checking(tree: ast.Module, target: ast.AST) -> bool:
    return any(
        isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) and target in ast.walk(node)
        for node in tree.body
    )


@pytest.mark.parametrize("name", LAYERS + ["__init__"])
def test_jobs_modules_import_only_lower_layers_and_only_at_module_level(name: str):
    imported, nested = _imports(JOBS / f"{name}.py")
    assert nested == [], f"{name}.py imports inside a function (lines {nested})"
    allowed = set(LAYERS[: LAYERS.index(name)]) if name in LAYERS else {"relay", "handlers", "dispatch"}
    assert imported <= allowed, f"{name}.py imports {sorted(imported - allowed)}, above it"


def test_every_jobs_module_is_in_a_layer():
    assert {p.stem for p in JOBS.glob("*.py")} == set(LAYERS) | {"__init__"}
