"""The base of the domain's life cycles: ``transitions`` state machines.

A life cycle class names its status Enum (``STATUS``) and declares each
command once, as a method decorated with ``@command(event, Move(...), ...)``:
the method's name is the trigger, and the decorator holds the trigger's
table rows (source, destination, guards) and its past-tense event. When the
class is defined, that table becomes ONE ``transitions.Machine`` for the
class: model-less, Enum states, no auto transitions, guards as
``conditions=``/``unless=``.

An instance keeps only its current status. A command attaches a small
holder in that status to the class's machine (``add_model``), fires the
trigger, reads the new state and detaches the holder (``remove_model``), so
the shared machine never keeps an instance alive. The holder is a separate
object because the commands share their triggers' names (``certify()``).
The two ways a trigger can fail are domain errors, never a silent
``False``: an illegal trigger raises ``IllegalTransition`` and a refused
guard raises ``GuardFailed``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar, Concatenate, ParamSpec, TypeVar

from transitions import EventData, Machine, MachineError

from .errors import GuardFailed, IllegalTransition


@dataclass(frozen=True)
class StateChange:
    """What a successful trigger did; the service records it and its event.

    ``from_state`` and ``to_state`` are the statuses' stored text values.
    """

    subject: str
    trigger: str
    from_state: str
    to_state: str
    at: datetime
    event: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Move:
    """One row of a command's transition table.

    The trigger moves a life cycle in one of ``source`` to ``dest`` when every
    guard in ``conditions`` returns True and every guard in ``unless`` returns
    False. A guard is a method of the life cycle, named here; it receives the
    keyword arguments the command passes to ``_fire``.
    """

    source: Enum | tuple[Enum, ...]
    dest: Enum
    conditions: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()

    @property
    def sources(self) -> tuple[Enum, ...]:
        return self.source if isinstance(self.source, tuple) else (self.source,)


@dataclass(frozen=True)
class Command:
    """A trigger (the command method's name), its event and its table rows."""

    trigger: str
    event: str
    moves: tuple[Move, ...]


_COMMAND_ATTRIBUTE = "__lifecycle_command__"

L = TypeVar("L", bound="Lifecycle")
P = ParamSpec("P")


def command(
    event: str, *moves: Move
) -> Callable[[Callable[Concatenate[L, P], StateChange]], Callable[Concatenate[L, P], StateChange]]:
    """Declare a command method: its name is the trigger, ``moves`` its table rows,
    ``event`` the past-tense event a successful trigger emits.

    The method's body calls ``self._fire(...)`` once to run the trigger.
    """
    if not moves:
        raise TypeError("a command needs at least one Move")

    def decorate(method: Callable[Concatenate[L, P], StateChange]) -> Callable[Concatenate[L, P], StateChange]:
        spec = Command(method.__name__, event, moves)

        @functools.wraps(method)
        def run(self: L, /, *args: P.args, **kwargs: P.kwargs) -> StateChange:
            self._running.append(spec)
            try:
                return method(self, *args, **kwargs)
            finally:
                self._running.pop()

        setattr(run, _COMMAND_ATTRIBUTE, spec)
        return run

    return decorate


class _Holder:
    """What the class's machine drives during one command.

    ``state`` and ``trigger`` are set by ``Machine.add_model``; ``owner`` is the
    life cycle whose guard methods the machine's conditions call.
    """

    state: Enum
    trigger: Callable[..., bool]

    def __init__(self, owner: Lifecycle):
        self.owner = owner


def _guard(name: str, event: EventData) -> bool:
    """A machine condition: call guard ``name`` of the life cycle being moved."""
    holder = event.model
    if not isinstance(holder, _Holder):  # pragma: no cover - only _Holder objects are ever added
        raise TypeError(f"unexpected model {holder!r}")
    return bool(getattr(holder.owner, name)(**event.kwargs))


class Lifecycle:
    """Base of the participant, patient, authorization and dispense life cycles."""

    #: The noun used in messages and event names (``prescriber``, ``pharmacy``).
    SUBJECT: ClassVar[str]
    #: The status Enum; its members are the machine's states.
    STATUS: ClassVar[type[Enum]]
    #: Every command of the class, by trigger (built from the ``@command`` methods).
    COMMANDS: ClassVar[Mapping[str, Command]]
    #: Attributes besides the status that a transition may change and the service stores.
    PERSISTED: ClassVar[tuple[str, ...]] = ()
    #: The one machine of the class.
    _machine: ClassVar[Machine]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "STATUS" not in cls.__dict__:
            return
        commands: dict[str, Command] = {}
        for name in dir(cls):
            spec = getattr(getattr(cls, name, None), _COMMAND_ATTRIBUTE, None)
            if isinstance(spec, Command):
                if spec.trigger != name:
                    raise TypeError(f"{cls.__name__}.{name} is the command {spec.trigger!r} under another name")
                commands[name] = spec
        cls.COMMANDS = commands
        cls._machine = Machine(
            model=None,
            states=cls.STATUS,
            initial=None,
            transitions=[cls._table_row(spec, move) for spec in commands.values() for move in spec.moves],
            auto_transitions=False,
            send_event=True,
            name=cls.__name__,
        )

    @classmethod
    def _table_row(cls, spec: Command, move: Move) -> dict[str, Any]:
        """One ``transitions`` transition; guard names are checked when the class is defined."""
        for state in (*move.sources, move.dest):
            if not isinstance(state, cls.STATUS):
                raise TypeError(f"{cls.__name__}.{spec.trigger}: {state!r} is not a {cls.STATUS.__name__}")
        for name in (*move.conditions, *move.unless):
            if not callable(getattr(cls, name, None)):
                raise TypeError(f"{cls.__name__}.{spec.trigger}: no guard method {name!r}")
        return {
            "trigger": spec.trigger,
            "source": list(move.sources),
            "dest": move.dest,
            "conditions": [functools.partial(_guard, name) for name in move.conditions],
            "unless": [functools.partial(_guard, name) for name in move.unless],
        }

    def __init__(self, status: Enum | str):
        try:
            self._status: Enum = self.STATUS(status)
        except ValueError:
            raise ValueError(f"unknown {self.SUBJECT} status {status!r}") from None
        self._running: list[Command] = []
        self._guard_errors: dict[str, list[str]] = {}

    @property
    def status(self) -> Enum:
        """The current status, as the Enum member."""
        return self._status

    @property
    def state(self) -> str:
        """The current status, as its stored text."""
        return str(self._status.value)

    def persisted(self) -> dict[str, Any]:
        """The values of ``PERSISTED`` attributes, to copy back onto the stored row."""
        return {name: getattr(self, name) for name in self.PERSISTED}

    def _fire(self, at: datetime, details: Mapping[str, Any] | None = None, **guard_args: Any) -> StateChange:
        """Run the trigger of the command being executed; ``guard_args`` go to its guards.

        Raises ``IllegalTransition`` when the trigger has no row from the current
        status and ``GuardFailed`` (with the guards' field errors) when every row's
        guards refuse it.
        """
        if not self._running:
            raise RuntimeError("_fire runs the trigger of a @command method and is called from one only")
        spec = self._running[-1]
        before = self._status
        self._guard_errors = {}
        holder = _Holder(self)
        machine = type(self)._machine
        machine.add_model(holder, initial=before)
        try:
            moved = holder.trigger(spec.trigger, **guard_args)
        except MachineError:
            raise IllegalTransition(self.SUBJECT, spec.trigger, str(before.value)) from None
        finally:
            machine.remove_model(holder)
        if not moved:
            raise GuardFailed(
                f"cannot {spec.trigger} the {self.SUBJECT}: its conditions are not met",
                self._guard_errors,
            )
        self._status = holder.state
        return StateChange(
            subject=self.SUBJECT,
            trigger=spec.trigger,
            from_state=str(before.value),
            to_state=self.state,
            at=at,
            event=spec.event,
            details=dict(details or {}),
        )

    def _require_true(self, group: str, values: Mapping[str, Any], names: tuple[str, ...]) -> bool:
        """Guard helper: every attestation in ``names`` must be literally ``True``."""
        missing = [n for n in names if values.get(n) is not True]
        for name in missing:
            self._guard_errors[f"{group}.{name}"] = ["Must be true."]
        return not missing
