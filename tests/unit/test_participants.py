"""R-PRES-1, R-PHA-1, R-PHA-2: the certification machines, without I/O."""

from __future__ import annotations

from datetime import timedelta

import pytest

from config.programs import load_program
from tests.helpers import PHARMACY_ATTESTED, PRESCRIBER_ATTESTED, utc
from workflows.errors import GuardFailed, IllegalTransition
from workflows.participants import (
    PharmacyCertification,
    PrescriberCertification,
    effective_pharmacy_status,
)

NOW = utc(2026, 6, 1, 12)
PROGRAM = load_program().in_force(NOW)


def prescriber_command(machine, trigger):
    return {
        "certify": lambda: machine.certify(PRESCRIBER_ATTESTED, NOW),
        "suspend": lambda: machine.suspend("r", NOW),
        "reinstate": lambda: machine.reinstate(NOW),
        "decertify": lambda: machine.decertify("r", NOW),
    }[trigger]()


PRESCRIBER_EVENTS = {
    "certify": "certified",
    "suspend": "suspended",
    "reinstate": "reinstated",
    "decertify": "decertified",
}

# (from, trigger) -> to, or None when the trigger is illegal from that state.
PRESCRIBER_TABLE = {
    ("pending", "certify"): "certified",
    ("pending", "suspend"): None,
    ("pending", "reinstate"): None,
    ("pending", "decertify"): "decertified",
    ("certified", "certify"): None,
    ("certified", "suspend"): "suspended",
    ("certified", "reinstate"): None,
    ("certified", "decertify"): "decertified",
    ("suspended", "certify"): None,
    ("suspended", "suspend"): None,
    ("suspended", "reinstate"): "certified",
    ("suspended", "decertify"): "decertified",
    ("decertified", "certify"): None,
    ("decertified", "suspend"): None,
    ("decertified", "reinstate"): None,
    ("decertified", "decertify"): None,
}


@pytest.mark.parametrize("start, trigger", sorted(PRESCRIBER_TABLE))
def test_R_PRES_1_transition_table(start, trigger):
    machine = PrescriberCertification(start)
    expected = PRESCRIBER_TABLE[(start, trigger)]
    if expected is None:
        with pytest.raises(IllegalTransition) as info:
            prescriber_command(machine, trigger)
        assert info.value.current_state == start
        assert machine.state == start
    else:
        change = prescriber_command(machine, trigger)
        assert (change.from_state, change.to_state, machine.state) == (start, expected, expected)
        assert change.event == f"prescriber.{PRESCRIBER_EVENTS[trigger]}"


@pytest.mark.parametrize("missing", sorted(PRESCRIBER_ATTESTED))
def test_R_PRES_1_every_attestation_is_required(missing):
    machine = PrescriberCertification("pending")
    with pytest.raises(GuardFailed) as info:
        machine.certify({**PRESCRIBER_ATTESTED, missing: False}, NOW)
    assert info.value.field_errors == {f"attestations.{missing}": ["Must be true."]}
    assert machine.state == "pending" and machine.certified_at is None


def test_R_PRES_1_truthy_values_are_not_attestations():
    machine = PrescriberCertification("pending")
    with pytest.raises(GuardFailed):
        machine.certify(dict.fromkeys(PRESCRIBER_ATTESTED, "true"), NOW)


def test_R_PRES_1_certification_records_time():
    machine = PrescriberCertification("pending")
    machine.certify(PRESCRIBER_ATTESTED, NOW)
    assert machine.certified_at == NOW


def test_unknown_stored_status_is_refused():
    with pytest.raises(ValueError):
        PrescriberCertification("active")


PHARMACY_TABLE = {
    ("pending", "certify"): "certified",
    ("pending", "suspend"): None,
    ("pending", "reinstate"): None,
    ("pending", "expire"): None,
    ("pending", "decertify"): "decertified",
    ("certified", "certify"): "certified",
    ("certified", "suspend"): "suspended",
    ("certified", "reinstate"): None,
    ("certified", "expire"): "expired",
    ("certified", "decertify"): "decertified",
    ("suspended", "certify"): None,
    ("suspended", "suspend"): None,
    ("suspended", "reinstate"): "certified",
    ("suspended", "expire"): None,
    ("suspended", "decertify"): "decertified",
    ("expired", "certify"): "certified",
    ("expired", "suspend"): None,
    ("expired", "reinstate"): None,
    ("expired", "expire"): None,
    ("expired", "decertify"): "decertified",
    ("decertified", "certify"): None,
    ("decertified", "suspend"): None,
    ("decertified", "reinstate"): None,
    ("decertified", "expire"): None,
    ("decertified", "decertify"): None,
}


def pharmacy_command(machine, trigger):
    return {
        "certify": lambda: machine.certify(PHARMACY_ATTESTED, PROGRAM, NOW),
        "suspend": lambda: machine.suspend("r", NOW),
        "reinstate": lambda: machine.reinstate(NOW),
        "expire": lambda: machine.expire(NOW),
        "decertify": lambda: machine.decertify(None, NOW),
    }[trigger]()


@pytest.mark.parametrize("start, trigger", sorted(PHARMACY_TABLE))
def test_R_PHA_1_transition_table(start, trigger):
    machine = PharmacyCertification(start, NOW)
    machine.certified_until = NOW  # ended by now: expire's guard holds wherever the table allows expire
    expected = PHARMACY_TABLE[(start, trigger)]
    if expected is None:
        with pytest.raises(IllegalTransition):
            pharmacy_command(machine, trigger)
        assert machine.state == start
    else:
        change = pharmacy_command(machine, trigger)
        assert (change.from_state, change.to_state) == (start, expected)


@pytest.mark.parametrize("missing", sorted(PHARMACY_ATTESTED))
def test_R_PHA_1_every_attestation_is_required(missing):
    with pytest.raises(GuardFailed):
        PharmacyCertification("pending", NOW).certify({**PHARMACY_ATTESTED, missing: False}, PROGRAM, NOW)


def test_R_PHA_2_certification_lasts_the_program_period():
    machine = PharmacyCertification("pending", NOW)
    change = machine.certify(PHARMACY_ATTESTED, PROGRAM, NOW)
    assert machine.certified_until == NOW + timedelta(days=PROGRAM.pharmacy_certification_days)
    assert change.details["renewal"] is False


@pytest.mark.parametrize(
    "offset, expected",
    [
        (timedelta(microseconds=-1), "certified"),
        (timedelta(0), "expired"),
        (timedelta(days=1), "expired"),
    ],
)
def test_R_PHA_2_expiry_edge_is_computed_from_certified_until(offset, expected):
    until = utc(2028, 1, 1)
    assert effective_pharmacy_status("certified", until, until + offset) == expected
    assert PharmacyCertification("certified", until + offset, certified_until=until).state == expected


@pytest.mark.parametrize("status", ["pending", "suspended", "decertified"])
def test_R_PHA_2_only_certified_pharmacies_expire(status):
    assert effective_pharmacy_status(status, utc(2020, 1, 1), NOW) == status


def test_R_PHA_2_renewal_after_expiry_is_a_renewal():
    until = utc(2026, 1, 1)
    machine = PharmacyCertification("certified", NOW, certified_at=until - timedelta(days=730), certified_until=until)
    assert machine.state == "expired"
    change = machine.certify(PHARMACY_ATTESTED, PROGRAM, NOW)
    assert change.from_state == "expired" and change.details["renewal"] is True
    assert change.details["previous_certified_until"] == until


def test_naive_now_is_refused():
    from datetime import datetime

    with pytest.raises(ValueError):
        effective_pharmacy_status("certified", utc(2028, 1, 1), datetime(2027, 1, 1))


def test_the_stored_certified_machine_expires_only_once_the_certification_has_ended():
    """R-PHA-2: the sweep records ``certified → expired`` through the guarded transition."""
    until = utc(2026, 6, 1)
    stored = PharmacyCertification("certified", None, until - timedelta(days=730), until)
    with pytest.raises(GuardFailed):
        stored.expire(until - timedelta(seconds=1))
    change = PharmacyCertification("certified", None, None, until).expire(until)
    assert (change.from_state, change.to_state) == ("certified", "expired")
    assert change.event == "pharmacy.certification_expired"
    assert change.details == {"certified_until": until}
