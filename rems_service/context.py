"""The per-request context: who is calling, the request's time, the program, units of work.

Built once per request, right after the caller is authenticated (``auth.protect``
does it for every API blueprint; a portal front would call ``begin`` after its
sign-in check), and read by views with ``ctx()``. A view is then a few lines::

    @blp.route("/<uuid:prescriber_id>/suspend", methods=["POST"])
    @roles(ADMIN)
    @blp.arguments(ReasonSchema)
    @blp.response(200, PrescriberSchema)
    def suspend(args, prescriber_id):
        c = ctx()
        return prescribers.suspend(c.uow(), c.actor, c.now, prescriber_id, args["reason"])

``c.uow()`` opens a unit of work; a service that opens its own (or retries)
takes the factory itself: ``dispenses.request(c.uow, c.actor, c.now, c.program, ...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import g

from rems_service.clock import request_now
from rems_service.db.uow import UnitOfWork
from rems_service.runtime import get_runtime
from workflows.actors import Actor
from workflows.program import Program


@dataclass(frozen=True)
class RequestContext:
    """What every use case called by a view needs, fixed for the whole request."""

    #: The authenticated caller.
    actor: Actor
    #: The effective time of the request: the sandbox clock header's instant, or the real time.
    now: datetime
    #: Every version of the program; services pick the one in force at ``now``.
    program: Program
    #: The unit-of-work factory: ``uow()`` opens one; pass ``uow`` itself where a service wants the factory.
    uow: Callable[[], UnitOfWork]


def begin(actor: Actor) -> RequestContext:
    """Build the context for the authenticated ``actor`` and keep it for the rest of the request."""
    runtime = get_runtime()
    context = RequestContext(actor=actor, now=request_now(), program=runtime.program, uow=runtime.uow)
    g.rems = context
    return context


def ctx() -> RequestContext:
    """The current request's context; raises ``RuntimeError`` outside an authenticated request."""
    context: RequestContext | None = g.get("rems")
    if context is None:
        raise RuntimeError("No request context: the view is not behind authentication (auth.protect).")
    return context


def current() -> RequestContext | None:
    """The current request's context, or None before (or without) authentication."""
    context: RequestContext | None = g.get("rems")
    return context
