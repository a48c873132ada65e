"""The life-cycle base: one ``transitions`` machine per class, Enum states, each
trigger declared once, failures reported (never a silent ``False``), and no
instance kept alive by the shared machine."""

from __future__ import annotations

import threading
from datetime import datetime
from enum import Enum

import pytest

from tests.helpers import PRESCRIBER_ATTESTED, utc
from workflows.authorizations import AuthorizationLifecycle, AuthorizationStatus
from workflows.dispenses import DispenseLifecycle, DispenseStatus
from workflows.errors import GuardFailed, IllegalTransition
from workflows.lifecycle import Lifecycle, Move, StateChange, command
from workflows.participants import (
    PharmacyCertification,
    PharmacyStatus,
    PrescriberCertification,
    PrescriberStatus,
)
from workflows.patients import PatientLifecycle, PatientStatus

NOW = utc(2026, 6, 1, 12)

LIFECYCLES: list[tuple[type[Lifecycle], type[Enum]]] = [
    (AuthorizationLifecycle, AuthorizationStatus),
    (DispenseLifecycle, DispenseStatus),
    (PatientLifecycle, PatientStatus),
    (PrescriberCertification, PrescriberStatus),
    (PharmacyCertification, PharmacyStatus),
]

#: The commands of each class, as the services call them.
EXPECTED_COMMANDS = {
    AuthorizationLifecycle: {"confirm", "release", "dispense", "expire", "void"},
    DispenseLifecycle: {"complete", "reverse", "lapse", "void"},
    PatientLifecycle: {"start_therapy", "halt", "flag", "reinstate", "resolve_intervention", "discontinue"},
    PrescriberCertification: {"certify", "suspend", "reinstate", "decertify"},
    PharmacyCertification: {"certify", "suspend", "reinstate", "expire", "decertify"},
}


@pytest.mark.parametrize(("cls", "status"), LIFECYCLES)
def test_one_machine_per_class_whose_states_are_the_status_enum(cls, status):
    machine = cls._machine
    assert machine is cls._machine
    assert list(machine.states) == [member.name for member in status]
    assert [state.value for state in machine.states.values()] == list(status)
    assert machine.auto_transitions is False
    assert set(machine.events) == set(cls.COMMANDS) == EXPECTED_COMMANDS[cls]


@pytest.mark.parametrize(("cls", "status"), LIFECYCLES)
def test_each_command_is_a_method_with_a_past_tense_event_of_its_subject(cls, status):
    for trigger, spec in cls.COMMANDS.items():
        assert spec.trigger == trigger and callable(getattr(cls, trigger))
        assert spec.event.startswith(f"{cls.SUBJECT}.")
        for move in spec.moves:
            assert all(isinstance(state, status) for state in (*move.sources, move.dest))


def _pharmacy(status: str) -> PharmacyCertification:
    return PharmacyCertification(status, NOW)


def test_the_constructor_takes_the_stored_text_or_the_enum_and_refuses_anything_else():
    assert PatientLifecycle("on_therapy").status is PatientStatus.ON_THERAPY
    assert PatientLifecycle(PatientStatus.ON_THERAPY).state == "on_therapy"
    with pytest.raises(ValueError, match="unknown patient status 'asleep'"):
        PatientLifecycle("asleep")
    with pytest.raises(ValueError, match="unknown dispense status"):
        DispenseLifecycle("issued")


def test_a_state_change_carries_plain_text_states():
    change = AuthorizationLifecycle(AuthorizationStatus.ISSUED).confirm("RC-1", NOW)
    assert change == StateChange(
        subject="authorization",
        trigger="confirm",
        from_state="issued",
        to_state="confirmed",
        at=NOW,
        event="authorization.confirmed",
        details={"confirmation_number": "RC-1"},
    )
    assert type(change.from_state) is str and type(change.to_state) is str


def test_an_illegal_trigger_is_reported_and_changes_nothing():
    machine = DispenseLifecycle("dispensed")
    with pytest.raises(IllegalTransition) as info:
        machine.reverse("too late", NOW)
    assert (info.value.subject, info.value.trigger, info.value.current_state) == ("dispense", "reverse", "dispensed")
    assert machine.state == "dispensed"


def test_a_refused_guard_is_reported_and_changes_nothing():
    machine = PrescriberCertification("pending")
    with pytest.raises(GuardFailed):
        machine.certify({}, NOW)
    assert machine.state == "pending" and machine.persisted() == {"certified_at": None}


def test_the_shared_machine_keeps_no_model_after_any_outcome():
    PrescriberCertification("pending").certify(PRESCRIBER_ATTESTED, NOW)
    with pytest.raises(GuardFailed):
        PrescriberCertification("pending").certify({}, NOW)
    with pytest.raises(IllegalTransition):
        PrescriberCertification("decertified").suspend(None, NOW)
    for cls, _status in LIFECYCLES:
        assert cls._machine.models == []


def test_commands_on_many_threads_share_the_machine_safely():
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(200):
                machine = PatientLifecycle("enrolled")
                assert machine.start_therapy(NOW).to_state == "on_therapy"
                assert machine.halt("positive test", NOW).to_state == "halted"
                assert machine.reinstate("reviewed", NOW).to_state == "on_therapy"
                with pytest.raises(IllegalTransition):
                    machine.start_therapy(NOW)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert PatientLifecycle._machine.models == []


class _Light(str, Enum):
    OFF = "off"
    ON = "on"


class _Other(str, Enum):
    ON = "on"


def test_a_table_row_with_a_foreign_state_or_a_missing_guard_is_refused_when_the_class_is_defined():
    with pytest.raises(TypeError, match="is not a _Light"):

        class _WrongState(Lifecycle):
            SUBJECT = "light"
            STATUS = _Light

            @command("light.on", Move(_Light.OFF, _Other.ON))
            def switch_on(self, now: datetime) -> StateChange:
                return self._fire(now)

    with pytest.raises(TypeError, match="no guard method '_powered'"):

        class _NoGuard(Lifecycle):
            SUBJECT = "light"
            STATUS = _Light

            @command("light.on", Move(_Light.OFF, _Light.ON, conditions=("_powered",)))
            def switch_on(self, now: datetime) -> StateChange:
                return self._fire(now)


def test_fire_outside_a_command_is_a_programming_error():
    with pytest.raises(RuntimeError):
        PatientLifecycle("enrolled")._fire(NOW)
