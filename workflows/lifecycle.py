"""A small base for domain objects whose status is a ``transitions`` machine.

The machine drives a tiny plain holder object (never a SQLModel row, and
not the domain object itself, so that the domain's command methods such as
``certify()`` can share their trigger's name). It starts in the stored
status, has no auto transitions, and turns the two ways a trigger can fail
into domain errors instead of a silent ``False``: an illegal trigger raises
``IllegalTransition`` and a refused guard raises ``GuardFailed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from transitions import Machine, MachineError

from .errors import GuardFailed, IllegalTransition


@dataclass(frozen=True)
class StateChange:
    """What a successful trigger did; the service records it and its event."""

    subject: str
    trigger: str
    from_state: str
    to_state: str
    at: datetime
    event: str
    details: dict[str, Any] = field(default_factory=dict)


class _StateHolder:
    """The object the ``transitions`` machine decorates; it holds only ``state``."""

    state: str


class Lifecycle:
    """Base of the participant and patient life cycles."""

    #: The noun used in messages and event names (``prescriber``, ``pharmacy``).
    SUBJECT: ClassVar[str]
    #: Every state, as text.
    STATES: ClassVar[list[str]]
    #: ``transitions`` transition dictionaries.
    TRANSITIONS: ClassVar[list[dict[str, Any]]]
    #: Past-tense event name per trigger.
    EVENTS: ClassVar[dict[str, str]]

    def __init__(self, status: str):
        if status not in self.STATES:
            raise ValueError(f"unknown {self.SUBJECT} status {status!r}")
        self._guard_errors: dict[str, list[str]] = {}
        self._holder = _StateHolder()
        Machine(
            model=self._holder,
            states=self.STATES,
            transitions=[self._bind_conditions(t) for t in self.TRANSITIONS],
            initial=status,
            auto_transitions=False,
            send_event=False,
        )

    @property
    def state(self) -> str:
        """The current status, as text."""
        return self._holder.state

    def _bind_conditions(self, transition: dict[str, Any]) -> dict[str, Any]:
        """Resolve condition names against this object rather than the holder."""
        bound = dict(transition)
        for key in ("conditions", "unless"):
            names = bound.get(key)
            if names is not None:
                names = [names] if isinstance(names, str) else names
                bound[key] = [getattr(self, name) for name in names]
        return bound

    #: Attributes besides the status that a transition may change and the service stores.
    PERSISTED: ClassVar[tuple[str, ...]] = ()

    def persisted(self) -> dict[str, Any]:
        """The values of ``PERSISTED`` attributes, to copy back onto the stored row."""
        return {name: getattr(self, name) for name in self.PERSISTED}

    def allowed_triggers(self) -> list[str]:
        """Triggers that are legal from the current state (guards not evaluated)."""
        return sorted({t["trigger"] for t in self.TRANSITIONS if self._source_matches(t["source"])})

    def _source_matches(self, source: str | list[str]) -> bool:
        return source == "*" or self.state == source or (isinstance(source, list) and self.state in source)

    def _fire(self, trigger: str, at: datetime, details: dict[str, Any] | None = None, **kwargs: Any) -> StateChange:
        before = self.state
        self._guard_errors = {}
        try:
            moved = self._holder.trigger(trigger, **kwargs)
        except MachineError:
            raise IllegalTransition(self.SUBJECT, trigger, before) from None
        if not moved:
            raise GuardFailed(
                f"cannot {trigger} the {self.SUBJECT}: its conditions are not met",
                self._guard_errors,
            )
        return StateChange(
            subject=self.SUBJECT,
            trigger=trigger,
            from_state=before,
            to_state=self.state,
            at=at,
            event=self.EVENTS[trigger],
            details=dict(details or {}),
        )

    def _require_true(self, group: str, values: dict[str, Any], names: tuple[str, ...]) -> bool:
        """Guard helper: every attestation in ``names`` must be literally ``True``."""
        missing = [n for n in names if values.get(n) is not True]
        for name in missing:
            self._guard_errors[f"{group}.{name}"] = ["Must be true."]
        return not missing
