"""API.md, lists and ``GET /me``: every list shows exactly what the single reads would
(a prescriber's own patients and authorizations, a pharmacy's own dispenses, the
caller's own subscriptions; admins everything), refuses other roles with 403, filters
by the status at the request's time, and pages by opaque keyset cursors that neither
skip nor repeat a row when rows are inserted between two pages."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.helpers import (
    ADULT_FRP,
    ADULT_MALE,
    AUTH_BODY,
    NOW,
    TRAINED,
    add_survey,
    add_test,
    dispense,
    enroll,
    make_user,
)

#: Complete survey answers (R-SURV-3: every question of the category answered).
MALE_ANSWERS = {"shared_capsules": False, "donated_blood": False}
FRP_ANSWERS = {
    "missed_period": False,
    "unprotected_intercourse": False,
    "missed_contraception": False,
    "shared_capsules": False,
    "donated_blood": False,
}


def get(world, token, path, at=NOW, **params):
    query = f"?{urlencode(params)}" if params else ""
    return world.api.as_(token).at(at).get(f"{path}{query}")


def ok(response) -> dict[str, Any]:
    assert response.status_code == 200, response.json
    return response.json


def walk(world, token, path, limit, at=NOW, **params) -> list[dict[str, Any]]:
    """Every item of a listing, page by page."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        page = ok(get(world, token, path, at=at, limit=limit, **params, **({"cursor": cursor} if cursor else {})))
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert page["items"], "a page with a next cursor is never empty"
    raise AssertionError("the listing never ended")


def named(world, first, last, token=None, body=ADULT_MALE, at=NOW):
    r = enroll(world, {**body, "first_name": first, "last_name": last}, token=token, at=at)
    assert r.status_code == 201, r.json
    return r.json


def authorized(world, token=None, at=NOW):
    """A male patient of the token's prescriber with a current survey and an approved authorization."""
    token = token or world.prescriber_token
    patient = named(world, "Al", "Bo", token=token, at=at)
    r = (
        world.api.as_(token)
        .at(at)
        .post(
            f"/api/v1/patients/{patient['id']}/surveys",
            json={"completed_at": (at - timedelta(hours=1)).isoformat(), "answers": MALE_ANSWERS},
        )
    )
    assert r.status_code == 201, r.json
    r = world.api.as_(token).at(at).post("/api/v1/authorizations", json={**AUTH_BODY, "patient_id": patient["id"]})
    assert r.status_code == 201 and r.json["decision"] == "approved", r.json
    return patient, r.json


def confirmed(world, at, token=None, pharmacist=None):
    """An authorization issued at NOW and confirmed by a pharmacy at ``at``; the decision."""
    patient, auth = authorized(world, token=token)
    r = dispense(world, auth["authorization_number"], patient["rems_patient_id"], at=at, token=pharmacist)
    assert r.status_code == 201 and r.json["decision"] == "approved", r.json
    return r.json


def ids(items, key="id") -> list[str]:
    return [i[key] for i in items]


# -- GET /patients ------------------------------------------------------------------------------


def test_prescribers_list_only_their_own_patients_admins_all(world):
    mine = {named(world, "Ann", f"Mine{i}")["id"] for i in range(3)}
    theirs = {named(world, "Bea", f"Theirs{i}", token=world.other_prescriber_token)["id"] for i in range(2)}
    assert set(ids(ok(get(world, world.prescriber_token, "/api/v1/patients"))["items"])) == mine
    assert set(ids(ok(get(world, world.other_prescriber_token, "/api/v1/patients"))["items"])) == theirs
    assert set(ids(ok(get(world, world.admin, "/api/v1/patients"))["items"])) == mine | theirs
    item = ok(get(world, world.prescriber_token, "/api/v1/patients"))["items"][0]
    assert set(item) == {
        "id",
        "rems_patient_id",
        "first_name",
        "last_name",
        "risk_category",
        "status",
        "prescriber_id",
        "enrolled_at",
        "next_test_due_at",
        "next_survey_due_at",
    }
    assert item["prescriber_id"] == str(world.prescriber.id) and item["status"] == "enrolled"


@pytest.mark.parametrize("who", ["pharmacist_token", "auditor"])
def test_other_roles_may_not_list_patients(world, who):
    named(world, "Ann", "Mine")
    r = get(world, getattr(world, who), "/api/v1/patients")
    assert r.status_code == 403, r.json


def test_patient_filters(world):
    male = named(world, "Zed", "Quinlan")
    frp = named(world, "Yara", "Okonkwo-Pemberton", body=ADULT_FRP)
    named(world, "Yann", "Other", token=world.other_prescriber_token, body=ADULT_FRP)
    # The FRP patient's newest negative test sets her next test; the male needs none.
    assert add_test(world, frp["id"], NOW - timedelta(days=2)).status_code == 201
    assert add_survey(world, male["id"], MALE_ANSWERS).status_code == 201
    discontinued = named(world, "Dan", "Gone")
    assert (
        world.api.as_(world.prescriber_token)
        .at(NOW)
        .post(f"/api/v1/patients/{discontinued['id']}/discontinue", json={})
        .status_code
        == 200
    )

    def listed(**params):
        return set(ids(ok(get(world, world.prescriber_token, "/api/v1/patients", **params))["items"]))

    assert listed(risk_category="FRP_ADULT") == {frp["id"]}
    assert listed(status="discontinued") == {discontinued["id"]}
    assert listed(status="enrolled") == {male["id"], frp["id"]}
    # Names: any case, a part of the first or last name; every word must match.
    assert listed(q="okonkwo") == {frp["id"]}
    assert listed(q="YARA pemb") == {frp["id"]}
    assert listed(q="yara quinlan") == set()
    assert listed(q="%") == set()  # a LIKE wildcard is a literal character
    # Next test due: the FRP patient's is a few days ahead; the male has none.
    detail = ok(get(world, world.prescriber_token, f"/api/v1/patients/{frp['id']}"))
    due = detail["pregnancy_testing"]["next_test_due_at"]
    item = next(i for i in ok(get(world, world.prescriber_token, "/api/v1/patients"))["items"] if i["id"] == frp["id"])
    assert item["next_test_due_at"] == due
    assert listed(test_due_before=due) == set()
    assert listed(test_due_before=(NOW + timedelta(days=60)).isoformat()) == {frp["id"]}
    assert listed(test_due_before=(NOW + timedelta(days=60)).date().isoformat()) == {frp["id"]}
    # Survey due: the male's survey is current for months; the others' are due at once.
    assert male["id"] not in listed(survey_due_before=(NOW + timedelta(days=1)).date().isoformat())
    assert frp["id"] in listed(survey_due_before=(NOW + timedelta(days=1)).date().isoformat())
    assert male["id"] in listed(survey_due_before=(NOW + timedelta(days=400)).isoformat())


def test_patient_pages_hold_every_patient_once_newest_first(world):
    made = [named(world, "Ann", f"P{i}", at=NOW + timedelta(minutes=i))["id"] for i in range(5)]
    items = walk(world, world.prescriber_token, "/api/v1/patients", limit=2)
    assert ids(items) == list(reversed(made))


def test_patient_pages_stable_under_concurrent_inserts(world):
    """Rows inserted between pages — at the same instant, before and after the
    originals — never make an original one disappear or come twice."""
    original = [named(world, "Ann", f"P{i}")["id"] for i in range(6)]  # one instant: ties broken by id
    first = ok(get(world, world.prescriber_token, "/api/v1/patients", limit=2))
    seen = ids(first["items"])
    cursor = first["next_cursor"]
    step = 0
    while cursor:
        for offset in (timedelta(0), timedelta(hours=-1), timedelta(hours=1)):
            named(world, "New", f"N{step}", at=NOW + offset)
        step += 1
        page = ok(get(world, world.prescriber_token, "/api/v1/patients", limit=2, cursor=cursor))
        seen += ids(page["items"])
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)), "no patient twice"
    assert sorted(i for i in seen if i in original) == sorted(original), "every original patient once"


@pytest.mark.parametrize(
    "params",
    [
        {"colour": "red"},
        {"limit": 0},
        {"limit": 1000},
        {"status": "asleep"},
        {"test_due_before": "soon"},
        {"test_due_before": "2026-06-15T10:00:00"},  # no offset
        {"cursor": "not-a-cursor"},
        {"cursor": base64.urlsafe_b64encode(json.dumps({"l": "authorizations", "k": []}).encode()).decode()},
    ],
)
def test_patient_list_refuses_bad_queries(world, params):
    r = get(world, world.prescriber_token, "/api/v1/patients", **params)
    assert r.status_code == 422, r.json
    assert set(r.json["errors"]) <= set(params) | {"limit"}


def test_a_cursor_of_another_listing_is_refused(world):
    for i in range(3):
        named(world, "Ann", f"P{i}")
    cursor = ok(get(world, world.prescriber_token, "/api/v1/patients", limit=1))["next_cursor"]
    assert cursor
    r = get(world, world.admin, "/api/v1/webhooks", cursor=cursor)
    assert r.status_code == 422 and "cursor" in r.json["errors"]


def test_lists_need_a_token(world):
    for path in ("/api/v1/patients", "/api/v1/authorizations", "/api/v1/dispenses", "/api/v1/webhooks", "/api/v1/me"):
        assert world.api.as_(None).get(path).status_code == 401


# -- GET /authorizations ----------------------------------------------------------------------


def test_authorizations_each_prescriber_its_own_admins_all(world):
    mine = {authorized(world)[1]["authorization_number"] for _ in range(2)}
    theirs = {authorized(world, token=world.other_prescriber_token)[1]["authorization_number"]}

    def numbers(token, **params):
        return {i["number"] for i in ok(get(world, token, "/api/v1/authorizations", **params))["items"]}

    assert numbers(world.prescriber_token) == mine
    assert numbers(world.other_prescriber_token) == theirs
    assert numbers(world.admin) == mine | theirs
    for token in (world.pharmacist_token, world.auditor):
        assert get(world, token, "/api/v1/authorizations").status_code == 403
    item = ok(get(world, world.prescriber_token, "/api/v1/authorizations"))["items"][0]
    assert item["status"] == "issued" and item["confirmation_expires_at"] is None
    assert {"number", "patient_id", "rems_patient_id", "risk_category", "days_supply", "quantity", "expires_at"} <= set(
        item
    )


def test_authorizations_by_patient_never_another_prescribers(world):
    patient, auth = authorized(world)
    authorized(world)
    other_patient, _ = authorized(world, token=world.other_prescriber_token)
    got = ok(get(world, world.prescriber_token, "/api/v1/authorizations", patient_id=patient["id"]))["items"]
    assert [i["number"] for i in got] == [auth["authorization_number"]]
    # Another prescriber's patient lists nothing, exactly like an unknown one.
    assert (
        ok(get(world, world.prescriber_token, "/api/v1/authorizations", patient_id=other_patient["id"]))["items"] == []
    )


def test_authorization_status_filter_is_the_status_now(world):
    """Issued, held by a live confirmation, held by a lapsed one, dispensed, voided, and
    expired by time alone (no sweep ran): each status filter lists exactly the
    authorizations the single read reports in that status, at several times."""
    _, issued = authorized(world)
    _, voided = authorized(world)
    assert (
        world.api.as_(world.prescriber_token)
        .at(NOW)
        .post(f"/api/v1/authorizations/{voided['authorization_number']}/void", json={})
        .status_code
        == 200
    )
    held = confirmed(world, NOW + timedelta(hours=1))
    lapsing = confirmed(world, NOW)
    handed = confirmed(world, NOW + timedelta(hours=2))
    r = (
        world.api.as_(world.pharmacist_token)
        .at(NOW + timedelta(hours=3))
        .post(f"/api/v1/dispenses/{handed['confirmation_number']}/complete", json={})
    )
    assert r.status_code == 200, r.json
    for at in (NOW + timedelta(hours=3), NOW + timedelta(hours=24, minutes=30), NOW + timedelta(days=40)):
        everything = ok(get(world, world.prescriber_token, "/api/v1/authorizations", at=at))["items"]
        assert len(everything) == 5
        for item in everything:  # the list says what the single read says
            single = ok(get(world, world.prescriber_token, f"/api/v1/authorizations/{item['number']}", at=at))
            assert item["status"] == single["status"], (at, item["number"])
        for status in ("issued", "confirmed", "dispensed", "expired", "voided"):
            got = ok(get(world, world.prescriber_token, "/api/v1/authorizations", at=at, status=status))["items"]
            assert {i["number"] for i in got} == {i["number"] for i in everything if i["status"] == status}
    statuses = {
        i["number"]: i["status"]
        for i in ok(get(world, world.prescriber_token, "/api/v1/authorizations", at=NOW + timedelta(hours=3)))["items"]
    }
    assert statuses[issued["authorization_number"]] == "issued"
    assert statuses[voided["authorization_number"]] == "voided"
    assert statuses[held["authorization_number"]] == "confirmed"
    assert statuses[lapsing["authorization_number"]] == "confirmed"
    assert statuses[handed["authorization_number"]] == "dispensed"
    # The lapsed confirmation frees its authorization (issued again); all open ones expire with time.
    later = {
        i["number"]: i["status"]
        for i in ok(get(world, world.prescriber_token, "/api/v1/authorizations", at=NOW + timedelta(hours=25)))["items"]
    }
    assert later[lapsing["authorization_number"]] == "issued"
    held_item = next(
        i
        for i in ok(get(world, world.prescriber_token, "/api/v1/authorizations", at=NOW + timedelta(hours=3)))["items"]
        if i["number"] == held["authorization_number"]
    )
    assert held_item["confirmation_expires_at"] == held["confirmation_expires_at"]
    expired = ok(
        get(world, world.prescriber_token, "/api/v1/authorizations", at=NOW + timedelta(days=40), status="expired")
    )
    assert {i["number"] for i in expired["items"]} == {
        issued["authorization_number"],
        held["authorization_number"],
        lapsing["authorization_number"],
    }


def test_authorization_pages_stable_under_concurrent_inserts(world):
    original = [authorized(world)[1]["authorization_number"] for _ in range(5)]
    first = ok(get(world, world.prescriber_token, "/api/v1/authorizations", limit=2))
    seen = [i["number"] for i in first["items"]]
    cursor = first["next_cursor"]
    inserted = 0
    while cursor:
        authorized(world)
        authorized(world, at=NOW - timedelta(hours=1))
        inserted += 2
        page = ok(get(world, world.prescriber_token, "/api/v1/authorizations", limit=2, cursor=cursor))
        seen += [i["number"] for i in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen))
    assert sorted(n for n in seen if n in original) == sorted(original)
    whole = walk(world, world.prescriber_token, "/api/v1/authorizations", limit=3)
    assert len(whole) == len({i["number"] for i in whole}) == len(original) + inserted


# -- GET /dispenses ---------------------------------------------------------------------------


def test_dispenses_each_pharmacy_its_own_admins_all(world):
    mine = {confirmed(world, NOW + timedelta(hours=h))["confirmation_number"] for h in (1, 2)}
    theirs = {
        confirmed(world, NOW + timedelta(hours=1), pharmacist=world.other_pharmacist_token)["confirmation_number"]
    }

    def numbers(token, **params):
        items = ok(get(world, token, "/api/v1/dispenses", at=NOW + timedelta(hours=3), **params))["items"]
        return {i["confirmation_number"] for i in items}

    assert numbers(world.pharmacist_token) == mine
    assert numbers(world.other_pharmacist_token) == theirs
    assert numbers(world.admin) == mine | theirs
    for token in (world.prescriber_token, world.auditor):
        assert get(world, token, "/api/v1/dispenses").status_code == 403


def test_the_hand_over_queue_by_time_left(world):
    """``status=confirmed``: live confirmations, least time left first; a lapsed one
    (no sweep has run) and a handed-over one are not in the queue."""
    late = confirmed(world, NOW + timedelta(hours=3))
    early = confirmed(world, NOW + timedelta(hours=1))
    middle = confirmed(world, NOW + timedelta(hours=2))
    lapsed = confirmed(world, NOW)
    handed = confirmed(world, NOW + timedelta(minutes=30))
    r = (
        world.api.as_(world.pharmacist_token)
        .at(NOW + timedelta(hours=3, minutes=30))
        .post(f"/api/v1/dispenses/{handed['confirmation_number']}/complete", json={})
    )
    assert r.status_code == 200, r.json
    at = NOW + timedelta(hours=24, minutes=30)  # the confirmation of NOW has lapsed, no sweep ran
    queue = ok(get(world, world.pharmacist_token, "/api/v1/dispenses", at=at, status="confirmed"))["items"]
    assert ids(queue, "confirmation_number") == [
        early["confirmation_number"],
        middle["confirmation_number"],
        late["confirmation_number"],
    ]
    assert all(i["status"] == "confirmed" for i in queue)
    windows = [i["confirmation_expires_at"] for i in queue]
    assert windows == sorted(windows)
    paged = walk(world, world.pharmacist_token, "/api/v1/dispenses", limit=1, at=at, status="confirmed")
    assert ids(paged, "confirmation_number") == ids(queue, "confirmation_number")
    gone = ok(get(world, world.pharmacist_token, "/api/v1/dispenses", at=at, status="lapsed"))["items"]
    assert ids(gone, "confirmation_number") == [lapsed["confirmation_number"]] and gone[0]["status"] == "lapsed"
    done = ok(get(world, world.pharmacist_token, "/api/v1/dispenses", at=at, status="dispensed"))["items"]
    assert ids(done, "confirmation_number") == [handed["confirmation_number"]]
    everything = ok(get(world, world.pharmacist_token, "/api/v1/dispenses", at=at))["items"]
    confirmed_times = [i["confirmed_at"] for i in everything]
    assert len(everything) == 5 and confirmed_times == sorted(confirmed_times, reverse=True)
    # The other pharmacy's queue is empty; an admin's queue holds the same three.
    assert ok(get(world, world.other_pharmacist_token, "/api/v1/dispenses", at=at, status="confirmed"))["items"] == []
    admin_queue = ok(get(world, world.admin, "/api/v1/dispenses", at=at, status="confirmed"))["items"]
    assert ids(admin_queue, "confirmation_number") == ids(queue, "confirmation_number")


def test_hand_over_queue_pages_stable_under_concurrent_inserts(world):
    original = [confirmed(world, NOW + timedelta(minutes=10 * i))["confirmation_number"] for i in range(5)]
    at = NOW + timedelta(hours=1)
    first = ok(get(world, world.pharmacist_token, "/api/v1/dispenses", at=at, status="confirmed", limit=2))
    seen = ids(first["items"], "confirmation_number")
    cursor = first["next_cursor"]
    step = 0
    while cursor:
        # New confirmations whose windows end before, among and after the originals'.
        confirmed(world, NOW + timedelta(minutes=5 + 10 * step))
        confirmed(world, NOW + timedelta(minutes=50))
        confirmed(world, NOW + timedelta(minutes=1))
        step += 1
        page = ok(
            get(world, world.pharmacist_token, "/api/v1/dispenses", at=at, status="confirmed", limit=2, cursor=cursor)
        )
        seen += ids(page["items"], "confirmation_number")
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen))
    assert sorted(n for n in seen if n in original) == sorted(original)


def test_a_queue_cursor_does_not_continue_the_newest_first_listing(world):
    for h in (1, 2):
        confirmed(world, NOW + timedelta(hours=h))
    at = NOW + timedelta(hours=3)
    cursor = ok(get(world, world.pharmacist_token, "/api/v1/dispenses", at=at, status="confirmed", limit=1))[
        "next_cursor"
    ]
    assert get(world, world.pharmacist_token, "/api/v1/dispenses", at=at, limit=1, cursor=cursor).status_code == 422


# -- GET /webhooks ----------------------------------------------------------------------------


def subscribe(world, token, n):
    r = world.api.as_(token).post(
        "/api/v1/webhooks", json={"url": f"https://93.184.215.14/hook/{n}", "events": ["authorization.issued"]}
    )
    assert r.status_code == 201, r.json
    return r.json["id"]


def test_webhooks_each_caller_its_own_without_secrets(world):
    owners = {
        "prescriber_token": {subscribe(world, world.prescriber_token, i) for i in range(2)},
        "other_prescriber_token": {subscribe(world, world.other_prescriber_token, 9)},
        "pharmacist_token": {subscribe(world, world.pharmacist_token, i) for i in range(2)},
        "other_pharmacist_token": {subscribe(world, world.other_pharmacist_token, 9)},
        "admin": {subscribe(world, world.admin, 0)},
    }
    gone = subscribe(world, world.prescriber_token, 99)
    assert world.api.as_(world.prescriber_token).request("DELETE", f"/api/v1/webhooks/{gone}").status_code == 204
    for who, expected in owners.items():
        if who == "admin":
            expected = set().union(*owners.values())
        items = ok(get(world, getattr(world, who), "/api/v1/webhooks"))["items"]
        assert set(ids(items)) == expected, who
        assert all("secret" not in i for i in items)
    assert get(world, world.auditor, "/api/v1/webhooks").status_code == 403
    paged = walk(world, world.admin, "/api/v1/webhooks", limit=2)
    assert len(paged) == len(set(ids(paged))) == 7


def test_webhook_pages_stable_under_concurrent_inserts(world):
    original = [subscribe(world, world.pharmacist_token, i) for i in range(5)]
    first = ok(get(world, world.pharmacist_token, "/api/v1/webhooks", limit=2))
    seen, cursor = ids(first["items"]), first["next_cursor"]
    while cursor:
        subscribe(world, world.pharmacist_token, 50)
        page = ok(get(world, world.pharmacist_token, "/api/v1/webhooks", limit=2, cursor=cursor))
        seen += ids(page["items"])
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen))
    assert sorted(i for i in seen if i in original) == sorted(original)


# -- GET /me ----------------------------------------------------------------------------------


def test_me_names_the_caller(world):
    pharmacist = ok(get(world, world.pharmacist_token, "/api/v1/me"))
    assert pharmacist["role"] == "pharmacist" and pharmacist["pharmacy_id"] == str(world.pharmacy.id)
    assert pharmacist["prescriber_id"] is None and pharmacist["trained"] is True
    assert pharmacist["training_completed_at"] is not None
    assert "token" not in pharmacist and "token_hash" not in pharmacist
    prescriber = ok(get(world, world.prescriber_token, "/api/v1/me"))
    assert prescriber["prescriber_id"] == str(world.prescriber.id) and prescriber["trained"] is None
    assert prescriber["id"] != pharmacist["id"] and prescriber["name"] == "test prescriber"
    for token, role in ((world.admin, "admin"), (world.auditor, "auditor")):
        assert ok(get(world, token, "/api/v1/me"))["role"] == role
    assert get(world, world.admin, "/api/v1/me", extra="1").status_code == 422


def test_me_says_whether_a_pharmacist_is_trained_at_the_requests_time(world):
    _, untrained = make_user(world.runtime, "pharmacist", pharmacy_id=world.pharmacy.id)
    me = ok(get(world, untrained, "/api/v1/me"))
    assert me["trained"] is False and me["training_completed_at"] is None
    before_training = TRAINED - timedelta(days=1)
    assert ok(get(world, world.pharmacist_token, "/api/v1/me", at=before_training))["trained"] is False
    assert ok(get(world, world.pharmacist_token, "/api/v1/me", at=TRAINED))["trained"] is True


def test_lists_are_documented(world):
    spec = world.api.get("/api/v1/openapi.json").json

    def query_names(path):
        return {p["name"] for p in spec["paths"][path]["get"].get("parameters", []) if p.get("in") == "query"}

    for path in ("/api/v1/patients", "/api/v1/authorizations", "/api/v1/dispenses", "/api/v1/webhooks"):
        assert {"limit", "cursor"} <= query_names(path), path
        assert "200" in spec["paths"][path]["get"]["responses"]
    assert {"status", "risk_category", "test_due_before", "survey_due_before", "q"} <= query_names("/api/v1/patients")
    assert {"patient_id", "status"} <= query_names("/api/v1/authorizations")
    assert "status" in query_names("/api/v1/dispenses")
    assert "200" in spec["paths"]["/api/v1/me"]["get"]["responses"]
    assert "post" in spec["paths"]["/api/v1/patients"]  # enrollment stays beside the list
