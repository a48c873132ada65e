"""API.md, Patients: enrollment, tests, surveys and the life cycle, with their error cases."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from sqlmodel import select

from rems_service.db.audit_chain import iter_entries
from rems_service.db.models import OutboxEvent, PatientSurvey
from tests.helpers import (
    ADULT_MALE,
    NOW,
    add_survey,
    add_test,
    audit_count,
    authorize,
    complete_answers,
    enroll,
    enrolled,
    utc,
)


def test_enroll_binds_patient_to_calling_prescriber(world):
    body = enrolled(world, ADULT_MALE)
    assert body["status"] == "enrolled" and body["risk_category"] == "MALE_ADULT"
    assert body["prescriber_id"] == str(world.prescriber.id)
    assert body["rems_patient_id"].startswith("RP-") and len(body["rems_patient_id"]) == 14
    assert not set(body["rems_patient_id"][3:]) & set("ILOU")


def test_rems_patient_ids_are_not_derived_from_phi(world):
    first = enrolled(world, ADULT_MALE)["rems_patient_id"]
    second = enrolled(world, ADULT_MALE)["rems_patient_id"]
    assert first != second


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"risk_category": "MALE_CHILD"}, "risk_category"),
        ({"date_of_birth": "2008-06-16", "guardian_name": "G"}, "risk_category"),  # 18 tomorrow
        ({"ppaf_signed": False}, "ppaf_signed"),
        ({"counseling_completed": False}, "counseling_completed"),
        ({"risk_category": "MALE_CHILD", "date_of_birth": "2012-01-01"}, "guardian_name"),
        ({"risk_category": "FRP_ADULT"}, "menstrual_cycle"),
        ({"risk_category": "FNRP_ADULT"}, "fnrp_reason"),
        ({"risk_category": "FNRP_ADULT", "fnrp_reason": "infertility"}, "fnrp_reason"),
        ({"risk_category": "SOMETHING"}, "risk_category"),
        ({"status": "on_therapy"}, "status"),
        ({"rems_patient_id": "RP-AAAAA-AAAAA"}, "rems_patient_id"),
        ({"prescriber_id": str(uuid.uuid4())}, "prescriber_id"),
        ({"date_of_birth": "02/04/1960"}, "date_of_birth"),
        ({"ppaf_signed": "true"}, "ppaf_signed"),
    ],
)
def test_enroll_validation_is_422_and_writes_nothing(world, changes, field):
    before = audit_count(world.runtime)
    r = enroll(world, {**ADULT_MALE, **changes})
    assert r.status_code == 422, r.json
    assert field in r.json["errors"]
    assert audit_count(world.runtime) == before


def test_R_CAT_1_exactly_18_on_the_enrollment_date_is_adult(world):
    assert enroll(world, {**ADULT_MALE, "date_of_birth": "2008-06-15"}).status_code == 201
    assert (
        enroll(
            world, {**ADULT_MALE, "date_of_birth": "2008-06-15", "risk_category": "MALE_CHILD", "guardian_name": "G"}
        ).status_code
        == 422
    )


def test_child_with_guardian_enrolls(world):
    r = enroll(
        world,
        {**ADULT_MALE, "date_of_birth": "2014-01-01", "risk_category": "MALE_CHILD", "guardian_name": "Guardian G"},
    )
    assert r.status_code == 201 and r.json["guardian_name"] == "Guardian G"


def test_uncertified_prescriber_gets_409(world):
    world.api.as_(world.admin).post(f"/api/v1/prescribers/{world.prescriber.id}/suspend", json={"reason": "review"})
    before = audit_count(world.runtime)
    r = enroll(world, ADULT_MALE)
    assert r.status_code == 409 and "PRESCRIBER_NOT_CERTIFIED" in r.json["message"]
    assert audit_count(world.runtime) == before


@pytest.mark.parametrize("who", ["admin", "auditor", "pharmacist_token"])
def test_only_prescribers_enroll(world, who):
    assert enroll(world, ADULT_MALE, token=getattr(world, who)).status_code == 403


def test_get_shows_testing_and_survey_status(world):
    p = enrolled(world)
    r = world.api.as_(world.prescriber_token).at(NOW).get(f"/api/v1/patients/{p['id']}")
    assert r.status_code == 200
    assert r.json["pregnancy_testing"]["state"] == "due"
    assert r.json["pregnancy_testing"]["reasons"][0]["code"] == "PREGNANCY_TEST_MISSING"
    survey = r.json["survey"]
    assert (survey["last_completed_at"], survey["next_due_at"], survey["current"]) == (None, NOW.isoformat(), False)
    assert survey["next_due_on"] == "2026-06-15" and survey["reasons"][0]["next_step"]
    # R-PREG-1 as dates: no test yet, so a first test collected today opens 25-29 June.
    assert r.json["pregnancy_testing"]["first_authorization"] == {
        "first_test_on": None,
        "authorize_from": "2026-06-25",
        "authorize_until": "2026-06-29",
        "second_test_from": "2026-06-24",
        "second_test_within_hours": 24,
    }
    assert r.json["pregnancy_testing"]["next_test_due_on"] == "2026-06-15"
    add_test(world, p["id"], NOW - timedelta(days=12))
    add_test(world, p["id"], NOW - timedelta(hours=2))
    add_survey(world, p["id"], complete_answers("FRP_ADULT"))
    r = world.api.as_(world.admin).at(NOW).get(f"/api/v1/patients/{p['id']}")
    assert r.json["pregnancy_testing"]["state"] == "current" and r.json["pregnancy_testing"]["reasons"] == []
    assert r.json["pregnancy_testing"]["next_test_due_at"] == utc(2026, 6, 23).isoformat()
    assert r.json["pregnancy_testing"]["next_test_due_on"] == "2026-06-22"
    # The test of 3 June counts as the first from today to 17 June.
    assert r.json["pregnancy_testing"]["first_authorization"] == {
        "first_test_on": "2026-06-03",
        "authorize_from": "2026-06-15",
        "authorize_until": "2026-06-17",
        "second_test_from": "2026-06-15",
        "second_test_within_hours": 24,
    }
    assert r.json["survey"]["current"] is True and r.json["survey"]["next_due_at"] == utc(2026, 7, 14).isoformat()
    assert r.json["survey"]["next_due_on"] == "2026-07-13" and r.json["survey"]["reasons"] == []


def test_R_SURV_3_an_empty_survey_is_refused_naming_every_question(world):
    """The issue's example: ``"answers": {}`` was counted as a current survey."""
    pid = enrolled(world)["id"]
    before = audit_count(world.runtime)
    r = add_survey(world, pid, {})
    assert r.status_code == 422
    assert set(r.json["errors"]) == {
        "answers.missed_period",
        "answers.unprotected_intercourse",
        "answers.missed_contraception",
        "answers.shared_capsules",
        "answers.donated_blood",
    }
    assert audit_count(world.runtime) == before
    male = enrolled(world, ADULT_MALE)["id"]
    r = add_survey(world, male, {"shared_capsules": False, "donated_blood": None})
    assert r.status_code == 422 and set(r.json["errors"]) == {"answers.donated_blood"}
    assert add_survey(world, male, complete_answers("MALE_ADULT")).status_code == 201
    assert add_survey(world, male, complete_answers("MALE_ADULT", unprotected_intercourse=False)).status_code == 201


def test_R_SURV_3_an_incomplete_survey_stored_before_does_not_count(world):
    """A survey recorded with unanswered questions before R-SURV-3 is not current for R-SURV-1:
    the newest *complete* survey is the one that counts."""
    male = enrolled(world, ADULT_MALE)
    assert (
        add_survey(world, male["id"], complete_answers("MALE_ADULT"), completed_at=NOW - timedelta(days=40)).status_code
        == 201
    )
    with world.runtime.session() as s:
        s.add(
            PatientSurvey(
                patient_id=uuid.UUID(male["id"]),
                completed_at=NOW - timedelta(days=2),
                answers={},
                noncompliance=[],
                recorded_at=NOW - timedelta(days=2),
            )
        )
        s.commit()
    view = world.api.as_(world.prescriber_token).at(NOW).get(f"/api/v1/patients/{male['id']}").json
    assert view["survey"]["current"] is False
    assert view["survey"]["last_completed_at"] == (NOW - timedelta(days=40)).isoformat()
    decision = authorize(world, male).json
    assert decision["decision"] == "denied"
    assert [x["code"] for x in decision["reasons"]] == ["PATIENT_SURVEY_OVERDUE"]
    assert add_survey(world, male["id"], complete_answers("MALE_ADULT")).status_code == 201
    assert authorize(world, male).json["decision"] == "approved"


def test_male_patient_testing_not_required(world):
    p = enrolled(world, ADULT_MALE)
    r = world.api.as_(world.prescriber_token).get(f"/api/v1/patients/{p['id']}")
    assert r.json["pregnancy_testing"]["state"] == "not_required"


def test_another_prescribers_patient_is_invisible(world):
    pid = enrolled(world)["id"]
    other = world.api.as_(world.other_prescriber_token)
    assert other.get(f"/api/v1/patients/{pid}").status_code == 404
    assert (
        other.post(
            f"/api/v1/patients/{pid}/pregnancy-tests",
            json={"collected_at": NOW.isoformat(), "result": "negative", "sensitivity_miu_ml": 25},
        ).status_code
        == 404
    )
    assert (
        other.post(f"/api/v1/patients/{pid}/surveys", json={"completed_at": NOW.isoformat(), "answers": {}}).status_code
        == 404
    )
    assert other.post(f"/api/v1/patients/{pid}/discontinue", json={}).status_code == 404


@pytest.mark.parametrize("who", ["auditor", "pharmacist_token"])
def test_get_forbidden_roles(world, who):
    pid = enrolled(world)["id"]
    assert world.api.as_(getattr(world, who)).get(f"/api/v1/patients/{pid}").status_code == 403


def test_unknown_patient_is_404_everywhere(world):
    missing = uuid.uuid4()
    p = world.api.as_(world.prescriber_token)
    assert p.get(f"/api/v1/patients/{missing}").status_code == 404
    assert add_test(world, missing, NOW - timedelta(hours=1)).status_code == 404
    assert (
        p.post(f"/api/v1/patients/{missing}/surveys", json={"completed_at": NOW.isoformat(), "answers": {}}).status_code
        == 404
    )
    assert p.post(f"/api/v1/patients/{missing}/discontinue").status_code == 404
    a = world.api.as_(world.admin)
    assert a.post(f"/api/v1/patients/{missing}/reinstate").status_code == 404
    assert a.post(f"/api/v1/patients/{missing}/resolve-intervention").status_code == 404


@pytest.mark.parametrize(
    "sensitivity, status",
    [(50, 201), (51, 422)],
)
def test_R_PREG_2_sensitivity_checked_at_entry(world, sensitivity, status):
    pid = enrolled(world)["id"]
    r = add_test(world, pid, NOW - timedelta(hours=1), sensitivity=sensitivity)
    assert r.status_code == status
    if status == 422:
        assert "sensitivity_miu_ml" in r.json["errors"] and "R-PREG-2" in r.json["errors"]["sensitivity_miu_ml"][0]


def test_R_PREG_5_future_test_and_non_frp_patient_are_422(world):
    pid = enrolled(world)["id"]
    r = add_test(world, pid, NOW + timedelta(minutes=1))
    assert r.status_code == 422 and "collected_at" in r.json["errors"]
    assert add_test(world, pid, NOW).status_code == 201  # exactly now is not the future
    male = enrolled(world, ADULT_MALE)["id"]
    before = audit_count(world.runtime)
    r = add_test(world, male, NOW - timedelta(hours=1))
    assert r.status_code == 422 and "R-PREG-5" in json.dumps(r.json["errors"])
    assert audit_count(world.runtime) == before


@pytest.mark.parametrize(
    "body, field",
    [
        ({"collected_at": "2026-06-15T10:00:00", "result": "negative", "sensitivity_miu_ml": 25}, "collected_at"),
        ({"collected_at": "2026-06-15T10:00:00+00:00", "result": "unclear", "sensitivity_miu_ml": 25}, "result"),
        (
            {"collected_at": "2026-06-15T10:00:00+00:00", "result": "negative", "sensitivity_miu_ml": "25"},
            "sensitivity_miu_ml",
        ),
        ({"collected_at": "2026-06-15T10:00:00+00:00", "result": "negative"}, "sensitivity_miu_ml"),
        (
            {
                "collected_at": "2026-06-15T10:00:00+00:00",
                "result": "negative",
                "sensitivity_miu_ml": 25,
                "patient_id": "x",
            },
            "patient_id",
        ),
    ],
)
def test_pregnancy_test_schema(world, body, field):
    pid = enrolled(world)["id"]
    r = world.api.as_(world.prescriber_token).at(NOW).post(f"/api/v1/patients/{pid}/pregnancy-tests", json=body)
    assert r.status_code == 422 and field in r.json["errors"]


def test_R_PREG_4_positive_test_halts_at_once_and_reports(world):
    pid = enrolled(world)["id"]
    r = add_test(world, pid, NOW - timedelta(hours=1), result="positive")
    assert r.status_code == 201 and r.json["patient_status"] == "halted"
    got = world.api.as_(world.prescriber_token).at(NOW).get(f"/api/v1/patients/{pid}").json
    assert got["status"] == "halted" and got["pregnancy_testing"]["state"] == "positive"
    with world.runtime.uow() as uow:
        log = list(iter_entries(uow.session))
        types = uow.session.exec(select(OutboxEvent.type)).all()
    assert [e.action for e in log[-2:]] == ["pregnancy_test.recorded", "patient.halted"]
    assert log[-1].details["rule"] == "R-PREG-4" and log[-1].details["from_state"] == "enrolled"
    assert "pregnancy.reported" in types
    # A later negative does not lift the halt; only an administrator does.
    assert add_test(world, pid, NOW - timedelta(minutes=30)).json["patient_status"] == "halted"
    assert world.api.as_(world.prescriber_token).post(f"/api/v1/patients/{pid}/reinstate").status_code == 403
    r = (
        world.api.as_(world.admin)
        .at(NOW)
        .post(f"/api/v1/patients/{pid}/reinstate", json={"reason": "false positive confirmed by serum test"})
    )
    assert r.status_code == 200 and r.json["status"] == "enrolled"


def test_R_PREG_4_positive_halts_a_patient_in_needs_intervention(world):
    pid = enrolled(world)["id"]
    r = add_survey(world, pid, complete_answers("FRP_ADULT", missed_period=True))
    assert r.json["patient_status"] == "needs_intervention"
    assert add_test(world, pid, NOW - timedelta(minutes=10), result="positive").json["patient_status"] == "halted"


def test_R_SURV_2_flag_moves_to_needs_intervention_and_admin_resolves(world):
    pid = enrolled(world, ADULT_MALE)["id"]
    r = add_survey(world, pid, {"shared_capsules": True, "donated_blood": False})
    assert (
        r.status_code == 201
        and r.json["noncompliance"] == ["shared_capsules"]
        and r.json["patient_status"] == "needs_intervention"
    )
    assert world.api.as_(world.admin).post(f"/api/v1/patients/{pid}/reinstate").status_code == 409
    r = world.api.as_(world.admin).post(
        f"/api/v1/patients/{pid}/resolve-intervention", json={"reason": "counseled again"}
    )
    assert r.status_code == 200 and r.json["status"] == "enrolled"
    assert world.api.as_(world.admin).post(f"/api/v1/patients/{pid}/resolve-intervention").status_code == 409


def test_survey_validation(world):
    male = enrolled(world, ADULT_MALE)["id"]
    r = add_survey(world, male, {"missed_period": True})
    assert r.status_code == 422 and "answers.missed_period" in r.json["errors"]
    r = add_survey(world, male, {}, completed_at=NOW + timedelta(minutes=1))
    assert r.status_code == 422 and "completed_at" in r.json["errors"]
    r = add_survey(world, male, {"ate_breakfast": True})
    assert r.status_code == 422 and "answers.ate_breakfast" in r.json["errors"]
    r = add_survey(world, male, {"donated_blood": "no"})
    assert r.status_code == 422


def test_discontinue_is_final_and_prescriber_only(world):
    pid = enrolled(world)["id"]
    assert world.api.as_(world.admin).post(f"/api/v1/patients/{pid}/discontinue").status_code == 403
    r = world.api.as_(world.prescriber_token).post(
        f"/api/v1/patients/{pid}/discontinue", json={"reason": "therapy complete"}
    )
    assert r.status_code == 200 and r.json["status"] == "discontinued"
    assert world.api.as_(world.prescriber_token).post(f"/api/v1/patients/{pid}/discontinue").status_code == 409
    assert add_test(world, pid, NOW - timedelta(hours=1)).status_code == 409
    assert add_survey(world, pid, complete_answers("FRP_ADULT")).status_code == 409
    assert world.api.as_(world.admin).post(f"/api/v1/patients/{pid}/reinstate").status_code == 409


@pytest.mark.parametrize("action", ["reinstate", "resolve-intervention"])
@pytest.mark.parametrize("who", ["prescriber_token", "auditor", "pharmacist_token"])
def test_admin_only_actions(world, action, who):
    pid = enrolled(world)["id"]
    assert world.api.as_(getattr(world, who)).post(f"/api/v1/patients/{pid}/{action}").status_code == 403


def test_no_patient_name_or_birth_date_in_audit_or_events_or_logs(world, capsys):
    pid = enrolled(world)["id"]
    add_test(world, pid, NOW - timedelta(hours=1), result="positive")
    add_survey(world, pid, complete_answers("FRP_ADULT", missed_contraception=True))
    world.api.as_(world.prescriber_token).get(f"/api/v1/patients/{pid}")
    with world.runtime.uow() as uow:
        entries = [e.model_dump_json() for e in iter_entries(uow.session)]
        events = [json.dumps(e.payload) for e in uow.session.exec(select(OutboxEvent)).all()]
    logs = capsys.readouterr().err
    for text in entries + events + [logs]:
        for phi in ("Yara", "Okonkwo-Pemberton", "1990-03-03"):
            assert phi not in text
    patient_entries = [e for e in entries if '"rems_patient_id":"RP-' in e.replace(" ", "")]
    assert len(patient_entries) >= 4
