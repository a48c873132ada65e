"""RQ job entrypoints, enqueued by dotted path with string ids (JSON serializer).

Each builds the app's runtime once per process (never before RQ's fork:
no pooled connection crosses it) and calls the idempotent body in
``handlers`` or ``services.sweeps`` with a fresh unit of work.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

from rems_service.runtime import Runtime
from rems_service.services import sweeps

from . import handlers
from . import relay as relay_module

_runtime: tuple[int, Runtime] | None = None


def runtime() -> Runtime:
    """This process's runtime. Built by the worker before it forks, it is taken over
    by each work horse after dropping the pooled connections it inherited
    (SQLAlchemy's ``dispose(close=False)``: the parent's sockets stay the parent's)."""
    global _runtime
    pid = os.getpid()
    if _runtime is None:
        from rems_service import create_app

        _runtime = (pid, create_app().extensions["rems"])
    elif _runtime[0] != pid:
        inherited = _runtime[1]
        inherited.engine.dispose(close=False)
        inherited._redis = None
        _runtime = (pid, inherited)
    return _runtime[1]


def _expire_authorization(rt: Runtime, authorization_id: str) -> bool:
    return sweeps.expire_authorization(rt.uow(), rt.program, handlers.utcnow(), uuid.UUID(authorization_id))


def _lapse_confirmation(rt: Runtime, dispense_id: str) -> bool:
    return sweeps.lapse_confirmation(rt.uow(), rt.program, handlers.utcnow(), uuid.UUID(dispense_id))


def _remind_authorization_expiring(rt: Runtime, authorization_id: str) -> bool:
    return sweeps.remind_authorization_expiring(rt.uow(), handlers.utcnow(), uuid.UUID(authorization_id))


def _remind_patient(rt: Runtime, patient_id: str) -> list[str]:
    return sweeps.remind_patient(rt.uow(), handlers.utcnow(), uuid.UUID(patient_id))


#: Job bodies by entrypoint name, for the inline dispatcher.
BODIES: dict[str, Callable[..., Any]] = {
    "handle_event": handlers.handle_event,
    "deliver_webhook": handlers.deliver_webhook,
    "expire_authorization": _expire_authorization,
    "lapse_confirmation": _lapse_confirmation,
    "remind_authorization_expiring": _remind_authorization_expiring,
    "remind_patient": _remind_patient,
    "run_sweeps": handlers.run_sweeps,
    "relay": relay_module.relay_outbox,
}


def run_inline(rt: Runtime, func: str, *args: Any) -> Any:
    return BODIES[func.rsplit(".", 1)[-1]](rt, *args)


def handle_event(event_id: str) -> bool:
    return handlers.handle_event(runtime(), event_id)


def deliver_webhook(delivery_id: str) -> bool | None:
    return handlers.deliver_webhook(runtime(), delivery_id)


def expire_authorization(authorization_id: str) -> bool:
    return _expire_authorization(runtime(), authorization_id)


def lapse_confirmation(dispense_id: str) -> bool:
    return _lapse_confirmation(runtime(), dispense_id)


def remind_authorization_expiring(authorization_id: str) -> bool:
    return _remind_authorization_expiring(runtime(), authorization_id)


def remind_patient(patient_id: str) -> list[str]:
    return _remind_patient(runtime(), patient_id)


def run_sweeps() -> dict[str, int]:
    return handlers.run_sweeps(runtime())


def relay() -> int:
    return relay_module.relay_outbox(runtime())
