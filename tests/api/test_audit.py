"""API.md, Audit: the auditor's filters, pages, single entries, verification and
export; every read recorded; patients only by REMS id (R-AUD-1 to R-AUD-3)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import text
from sqlmodel import select

from config.programs import PROGRAMS_DIR
from rems_service.db import audit_chain
from rems_service.db.models import AuditEntry, OutboxEvent
from rems_service.services.audit_log import AUDIT_ACTIONS
from tests.helpers import (
    ADULT_FRP,
    ADULT_MALE,
    NOW,
    Api,
    approved_authorization,
    authorize,
    dispense,
    enrolled,
    make_user,
    tamper_with_audit,
    utc,
)
from workflows.actors import SYSTEM


@pytest.fixture
def history(world):
    """Decisions by two prescribers and two pharmacies, approved and denied, and a
    patient-mismatch denial (another patient's authorization presented)."""
    patient, auth = approved_authorization(world, ADULT_MALE)
    ok = dispense(world, auth["authorization_number"], patient["rems_patient_id"], at=NOW + timedelta(hours=1)).json
    used = dispense(
        world,
        auth["authorization_number"],
        patient["rems_patient_id"],
        token=world.other_pharmacist_token,
        at=NOW + timedelta(hours=2),
    ).json
    stranger = enrolled(world, ADULT_FRP)
    denied = authorize(world, stranger, at=NOW + timedelta(days=1)).json
    other, other_auth = approved_authorization(world, ADULT_MALE, at=NOW + timedelta(days=1))
    mismatch = dispense(
        world, other_auth["authorization_number"], patient["rems_patient_id"], at=NOW + timedelta(days=1, hours=1)
    ).json
    return {
        "patient": patient,
        "auth": auth,
        "ok": ok,
        "used": used,
        "denied": denied,
        "stranger": stranger,
        "other": other,
        "other_auth": other_auth,
        "mismatch": mismatch,
    }


def events(world, token=None, **params):
    return world.api.as_(token or world.auditor).get(f"/api/v1/audit/events?{urlencode(params)}")


def export(world, fmt="ndjson", **params):
    return world.api.as_(world.auditor).get(f"/api/v1/audit/export?{urlencode({'format': fmt, **params})}")


def seqs(response) -> list[int]:
    assert response.status_code == 200, response.json
    return [i["seq"] for i in response.json["items"]]


def exported_seqs(response) -> list[int]:
    """The seqs of an NDJSON export, newest first (as a listing gives them)."""
    assert response.status_code == 200, response.get_data(as_text=True)
    return sorted((json.loads(line)["seq"] for line in response.get_data(as_text=True).splitlines()), reverse=True)


def names(item: dict, keys: tuple[str, ...], value: str) -> bool:
    """Whether the entry's subject or details name ``value`` under one of ``keys`` (the test's oracle)."""
    return any(source.get(key) == value for source in (item["subject"], item["details"]) for key in keys)


PATIENT_KEYS = ("rems_patient_id", "presented_rems_patient_id", "authorization_rems_patient_id")


def test_auditor_sees_every_pharmacys_decisions_newest_first(world, history):
    r = events(world, action="dispense.decided")
    assert seqs(r) == sorted(seqs(r), reverse=True)
    pharmacies = {i["subject"]["pharmacy_id"] for i in r.json["items"]}
    assert pharmacies == {str(world.pharmacy.id), str(world.other_pharmacy.id)}
    item = r.json["items"][0]
    assert set(item) >= {
        "seq",
        "recorded_at",
        "effective_at",
        "actor",
        "action",
        "outcome",
        "reasons",
        "program_version",
        "subject",
        "inputs_digest",
        "prev_hash",
        "hash",
    }
    assert item["actor"]["role"] == "pharmacist"


@pytest.mark.parametrize("token", ["prescriber_token", "pharmacist_token"])
@pytest.mark.parametrize(
    "path",
    ["/api/v1/audit/events", "/api/v1/audit/events/1", "/api/v1/audit/verify", "/api/v1/audit/export?format=csv"],
)
def test_pharmacists_and_prescribers_get_403(world, token, path):
    assert world.api.as_(getattr(world, token)).get(path).status_code == 403


def test_admin_may_read_the_log(world, history):
    assert events(world, token=world.admin).status_code == 200


FILTERS = [
    ("action", lambda w, h: "authorization.decided", lambda w, h, i: i["action"] == "authorization.decided"),
    ("outcome", lambda w, h: "denied", lambda w, h, i: i["outcome"] == "denied"),
    (
        "reason",
        lambda w, h: "AUTHORIZATION_ALREADY_USED",
        lambda w, h, i: "AUTHORIZATION_ALREADY_USED" in [r["code"] for r in i["reasons"]],
    ),
    (
        "pharmacy_id",
        lambda w, h: w.other_pharmacy.id,
        lambda w, h, i: i["subject"].get("pharmacy_id") == str(w.other_pharmacy.id),
    ),
    (
        "prescriber_id",
        lambda w, h: w.prescriber.id,
        lambda w, h, i: i["subject"].get("prescriber_id") == str(w.prescriber.id),
    ),
    (
        "rems_patient_id",
        lambda w, h: h["stranger"]["rems_patient_id"],
        lambda w, h, i: names(i, PATIENT_KEYS, h["stranger"]["rems_patient_id"]),
    ),
    (
        "rems_patient_id",
        lambda w, h: h["other"]["rems_patient_id"],
        lambda w, h, i: names(i, PATIENT_KEYS, h["other"]["rems_patient_id"]),
    ),
    (
        "authorization_number",
        lambda w, h: h["auth"]["authorization_number"],
        lambda w, h, i: names(i, ("authorization_number",), h["auth"]["authorization_number"]),
    ),
    (
        "confirmation_number",
        lambda w, h: h["ok"]["confirmation_number"],
        lambda w, h, i: names(i, ("confirmation_number",), h["ok"]["confirmation_number"]),
    ),
    (
        "since",
        lambda w, h: (NOW + timedelta(hours=12)).isoformat(),
        lambda w, h, i: i["effective_at"] >= (NOW + timedelta(hours=12)).isoformat(),
    ),
    (
        "until",
        lambda w, h: (NOW + timedelta(hours=1)).isoformat(),
        lambda w, h, i: i["effective_at"] < (NOW + timedelta(hours=1)).isoformat(),
    ),
]


def _everything(world) -> list[dict]:
    with world.runtime.session() as s:
        return [json.loads(json.dumps(_as_item(e))) for e in s.exec(select(AuditEntry)).all()]


@pytest.mark.parametrize("how", ["listing", "export"])
@pytest.mark.parametrize("name, value, expect", FILTERS, ids=[f[0] + str(n) for n, f in enumerate(FILTERS)])
def test_each_filter_returns_exactly_the_matching_entries(world, history, how, name, value, expect):
    everything = _everything(world)
    wanted = sorted(
        (i["seq"] for i in everything if expect(world, history, i) and i["action"] != "audit.read"), reverse=True
    )
    assert wanted, "the history must contain matching entries"
    assert len(wanted) < len(everything), "and non-matching ones"
    params = {name: value(world, history)}
    got = seqs(events(world, limit=500, **params)) if how == "listing" else exported_seqs(export(world, **params))
    assert got == wanted


def _as_item(e: AuditEntry) -> dict:
    return {
        "seq": e.seq,
        "action": e.action,
        "outcome": e.outcome,
        "reasons": e.reasons,
        "subject": e.subject,
        "details": e.details,
        "effective_at": e.effective_at.isoformat(),
    }


def _typed(number: str) -> str:
    """A number as a person might type it: lower case, spaced, 0 as O and 1 as I or l."""
    return " " + number.lower().replace("0", "O").replace("1", "l").replace("-", " - ", 1) + " "


@pytest.mark.parametrize("how", ["listing", "export"])
def test_references_are_matched_in_canonical_form(world, history, how):
    def found(**params):
        return seqs(events(world, limit=500, **params)) if how == "listing" else exported_seqs(export(world, **params))

    for kind, value in (
        ("rems_patient_id", history["patient"]["rems_patient_id"]),
        ("authorization_number", history["auth"]["authorization_number"]),
        ("confirmation_number", history["ok"]["confirmation_number"]),
    ):
        exact = found(**{kind: value})
        assert exact, kind
        typed = value.lower() if kind == "rems_patient_id" else _typed(value)
        assert typed.strip() != value
        assert found(**{kind: typed}) == exact, (kind, typed)
    assert found(rems_patient_id="RP-NOONE-NOONE") == []


def test_a_patient_mismatch_denial_is_found_by_either_patient(world, history):
    mismatch = history["mismatch"]
    assert mismatch["decision"] == "denied"
    presented, owner = history["patient"]["rems_patient_id"], history["other"]["rems_patient_id"]
    # The pharmacy learns nothing about the authorization's patient: not in the decision ...
    assert owner not in json.dumps(mismatch)
    for rems_id in (presented, owner, owner.lower()):
        found = events(world, limit=500, rems_patient_id=rems_id, action="dispense.decided").json["items"]
        assert mismatch["audit_seq"] in [i["seq"] for i in found], rems_id
    entry = world.api.as_(world.auditor).get(f"/api/v1/audit/events/{mismatch['audit_seq']}").json
    assert entry["subject"]["presented_rems_patient_id"] == presented
    assert entry["subject"]["authorization_rems_patient_id"] == owner
    assert "rems_patient_id" not in entry["subject"] and "patient_id" not in entry["subject"]
    # ... nor in the event its webhooks deliver.
    with world.runtime.session() as s:
        payloads = [e.payload for e in s.exec(select(OutboxEvent).where(OutboxEvent.type == "dispense.denied")).all()]
    assert payloads and all(owner not in json.dumps(p) for p in payloads)
    assert all("presented_rems_patient_id" not in p for p in payloads)


def test_an_unknown_authorization_records_the_presented_patient(world, history):
    presented = history["stranger"]["rems_patient_id"]
    r = dispense(world, "RA-00000-00000-00000", presented.lower(), at=NOW + timedelta(days=2)).json
    assert r["decision"] == "denied"
    found = seqs(events(world, limit=500, rems_patient_id=presented, authorization_number="ra-ooooo-ooooo-ooooo"))
    assert found == [r["audit_seq"]]


def test_reads_are_hidden_unless_asked_and_still_recorded(world, history):
    first = seqs(events(world, limit=500))
    events(world, outcome="denied")
    world.api.as_(world.auditor).get("/api/v1/audit/verify")
    hidden = events(world, limit=500).json["items"]
    assert all(i["action"] != "audit.read" for i in hidden)
    assert [i["seq"] for i in hidden] == first
    shown = events(world, limit=500, include_reads="true").json["items"]
    reads = [i for i in shown if i["action"] == "audit.read"]
    assert [r["details"]["operation"] for r in reversed(reads)] == ["list", "list", "verify", "list"]
    assert {i["seq"] for i in shown} - {r["seq"] for r in reads} == set(first)
    by_action = seqs(events(world, limit=500, action="audit.read"))
    assert by_action[1:] == [r["seq"] for r in reads]  # below the include_reads listing's own read
    assert exported_seqs(export(world)) == first
    assert set(exported_seqs(export(world, include_reads="true"))) > set(first)


def test_action_is_one_of_the_documented_values(world, history):
    r = events(world, action="dispense.decide")
    assert r.status_code == 422
    message = json.dumps(r.json["errors"]["action"])
    assert "dispense.decided" in message and "authorization.confirmed" in message and "audit.read" in message
    assert export(world, action="nope").status_code == 422
    spec = world.api.get("/api/v1/openapi.json").json
    params = spec["paths"]["/api/v1/audit/events"]["get"]["parameters"]
    documented = next(p for p in params if p["name"] == "action")["schema"]["enum"]
    assert documented == list(AUDIT_ACTIONS)


def test_every_action_the_service_records_is_a_documented_value(world, history):
    """The enumerated list comes from the code; a history touching decisions, state changes,
    registrations, records and reads only writes actions it names."""
    events(world)
    number = history["other_auth"]["authorization_number"]
    assert (
        world.api.as_(world.prescriber_token)
        .at(NOW + timedelta(days=1, hours=2))
        .post(f"/api/v1/authorizations/{number}/void")
        .status_code
        == 200
    )
    written = {i["action"] for i in _everything(world)}
    assert {"authorization.decided", "dispense.decided", "authorization.voided", "audit.read"} <= written
    assert written <= set(AUDIT_ACTIONS), written - set(AUDIT_ACTIONS)
    for action in sorted(written):
        assert events(world, action=action).status_code == 200, action


def test_filters_combine(world, history):
    got = events(world, action="dispense.decided", outcome="approved").json["items"]
    assert [i["seq"] for i in got] == [history["ok"]["audit_seq"]]


def test_cursor_pages_cover_everything_once(world, history):
    pages, cursor = [], None
    while True:
        r = events(world, limit=3, **({"cursor": cursor} if cursor else {}))
        pages.append(seqs(r))
        cursor = r.json["next_cursor"]
        if cursor is None:
            break
    flat = [s for p in pages for s in p]
    assert len(pages) >= 2 and flat == sorted(set(flat), reverse=True)
    assert set(flat) >= set(seqs(events(world, limit=500, until=(NOW + timedelta(days=2)).isoformat())))


@pytest.mark.parametrize(
    "params, field",
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
        ({"outcome": "maybe"}, "outcome"),
        ({"reason": "NOT_A_CODE"}, "reason"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-11-27T10:00:00"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"include_reads": "maybe"}, "include_reads"),
        ({"authorization_number": "R" * 41}, "authorization_number"),
        ({"pharmacy_id": "x"}, "pharmacy_id"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_queries_are_422(world, params, field):
    r = events(world, **params)
    assert r.status_code == 422 and field in r.json["errors"], r.json


def test_single_entry_and_404(world, history):
    seq = history["denied"]["audit_seq"]
    r = world.api.as_(world.auditor).get(f"/api/v1/audit/events/{seq}")
    assert r.status_code == 200 and r.json["seq"] == seq and r.json["outcome"] == "denied"
    assert {x["code"] for x in r.json["reasons"]} >= {"PREGNANCY_TEST_MISSING"}
    assert world.api.as_(world.auditor).get("/api/v1/audit/events/999999").status_code == 404


def test_every_read_is_recorded(world, history):
    events(world, outcome="denied", limit=5)
    world.api.as_(world.auditor).get(f"/api/v1/audit/events/{history['ok']['audit_seq']}")
    world.api.as_(world.auditor).get("/api/v1/audit/verify")
    world.api.as_(world.auditor).get("/api/v1/audit/export?format=ndjson").get_data()
    with world.runtime.session() as s:
        reads = s.exec(select(AuditEntry).where(AuditEntry.action == "audit.read").order_by(AuditEntry.seq)).all()
    assert [r.details["operation"] for r in reads] == ["list", "get", "verify", "export"]
    assert all(r.actor_role == "auditor" for r in reads)
    assert (
        reads[0].details["filters"] == {"outcome": "denied"} and reads[1].details["seq"] == history["ok"]["audit_seq"]
    )


def test_verify_names_the_first_invalid_entry_and_checkpoints(world, history):
    r = world.api.as_(world.auditor).get("/api/v1/audit/verify")
    assert r.status_code == 200 and r.json["valid"] is True and r.json["mode"] == "full"
    inc = world.api.as_(world.auditor).get("/api/v1/audit/verify?incremental=true").json
    assert inc["valid"] and inc["mode"] == "incremental" and inc["started_after_seq"] == r.json["head_seq"]
    with world.runtime.session() as s:
        target = s.exec(
            select(AuditEntry.seq).where(AuditEntry.action == "patient.enrolled").order_by(AuditEntry.seq)
        ).first()
        tamper_with_audit(s)
        s.execute(text("UPDATE audit_entries SET outcome = 'denied' WHERE seq = :seq"), {"seq": target})
        s.commit()
    bad = world.api.as_(world.auditor).get("/api/v1/audit/verify").json
    assert bad["valid"] is False and bad["first_invalid_seq"] == target


def test_anchor_query_parameter(world, history):
    with world.runtime.session() as s:
        head = s.exec(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
    ok = world.api.as_(world.auditor).get(f"/api/v1/audit/verify?anchor={head.seq}:{head.hash}").json
    assert ok["valid"] and ok["anchor"]["matches"] is True
    wrong = world.api.as_(world.auditor).get(f"/api/v1/audit/verify?anchor={head.seq}:{'f' * 64}").json
    assert wrong["valid"] is False and wrong["first_invalid_seq"] == head.seq
    assert world.api.as_(world.auditor).get("/api/v1/audit/verify?anchor=12").status_code == 422


CSV_HEADER = [
    "seq",
    "recorded_at",
    "effective_at",
    "actor_user_id",
    "actor_role",
    "action",
    "outcome",
    "reason_codes",
    "rules",
    "rems_patient_id",
    "authorization_number",
    "confirmation_number",
    "pharmacy_id",
    "prescriber_id",
    "program_version",
    "inputs_digest",
    "prev_hash",
    "hash",
]


def test_export_round_trips_to_the_api_entries(world, history):
    api_items = {i["seq"]: i for i in events(world, limit=500, action="dispense.decided").json["items"]}
    nd = export(world, action="dispense.decided")
    assert nd.status_code == 200 and nd.mimetype == "application/x-ndjson"
    exported = [json.loads(line) for line in nd.get_data(as_text=True).splitlines()]
    assert {i["seq"]: i for i in exported} == api_items


def test_csv_has_flat_columns_one_row_per_entry(world, history):
    api_items = {i["seq"]: i for i in events(world, limit=500).json["items"]}
    r = export(world, "csv")
    assert r.mimetype == "text/csv"
    reader = csv.reader(io.StringIO(r.get_data(as_text=True)))
    assert next(reader) == CSV_HEADER
    rows = [dict(zip(CSV_HEADER, row, strict=True)) for row in reader]
    assert [int(row["seq"]) for row in rows] == sorted(api_items)
    for row in rows:
        original = api_items[int(row["seq"])]
        assert not any(cell.startswith(("{", "[")) for cell in row.values()), row
        assert row["hash"] == original["hash"] and row["prev_hash"] == original["prev_hash"]
        assert row["effective_at"] == original["effective_at"] and row["recorded_at"] == original["recorded_at"]
        assert row["actor_role"] == original["actor"]["role"] and row["action"] == original["action"]
        assert row["reason_codes"] == ";".join(x["code"] for x in original["reasons"])
        assert row["rules"] == ";".join(dict.fromkeys(x["rule"] for x in original["reasons"]))
        assert row["program_version"] == (original["program_version"] or "")
        assert row["pharmacy_id"] == (original["subject"].get("pharmacy_id") or "")
        assert row["prescriber_id"] == (original["subject"].get("prescriber_id") or "")
    by_seq = {int(row["seq"]): row for row in rows}
    ok = by_seq[history["ok"]["audit_seq"]]
    assert ok["confirmation_number"] == history["ok"]["confirmation_number"]
    assert ok["authorization_number"] == history["auth"]["authorization_number"]
    assert ok["rems_patient_id"] == history["patient"]["rems_patient_id"] and ok["outcome"] == "approved"
    used = by_seq[history["used"]["audit_seq"]]
    assert "AUTHORIZATION_ALREADY_USED" in used["reason_codes"].split(";") and used["confirmation_number"] == ""
    denied = by_seq[history["denied"]["audit_seq"]]
    assert len(denied["reason_codes"].split(";")) == len(api_items[history["denied"]["audit_seq"]]["reasons"]) > 1
    mismatch = by_seq[history["mismatch"]["audit_seq"]]
    assert set(mismatch["rems_patient_id"].split(";")) == {
        history["patient"]["rems_patient_id"],
        history["other"]["rems_patient_id"],
    }
    filtered = list(
        csv.DictReader(
            io.StringIO(
                export(world, "csv", rems_patient_id=history["other"]["rems_patient_id"]).get_data(as_text=True)
            )
        )
    )
    assert {int(row["seq"]) for row in filtered} >= {history["mismatch"]["audit_seq"]}
    assert all(history["other"]["rems_patient_id"] in row["rems_patient_id"].split(";") for row in filtered)


def test_export_needs_a_format(world):
    assert world.api.as_(world.auditor).get("/api/v1/audit/export").status_code == 422
    assert world.api.as_(world.auditor).get("/api/v1/audit/export?format=xml").status_code == 422


def test_no_entry_contains_a_patient_name_or_date_of_birth(world, history):
    body = world.api.as_(world.auditor).get("/api/v1/audit/export?format=ndjson").get_data(as_text=True)
    assert history["patient"]["rems_patient_id"] in body
    for patient in (ADULT_MALE, ADULT_FRP):
        for phi in (patient["first_name"], patient["last_name"], patient["date_of_birth"]):
            assert phi not in body


@pytest.fixture
def chicago(tmp_path, make_app):
    """An app whose program counts days in America/Chicago (UTC-6 in November), an
    auditor, and two entries either side of the zone's midnight that starts 27 November."""
    programs = tmp_path / "programs"
    shutil.copytree(PROGRAMS_DIR, programs, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    for path in programs.glob("*.toml"):
        content = path.read_text()
        assert 'timezone = "UTC"' in content
        path.write_text(content.replace('timezone = "UTC"', 'timezone = "America/Chicago"'))
    app = make_app(PROGRAM_DIR=str(programs))
    runtime = app.extensions["rems"]
    auditor = make_user(runtime, "auditor")[1]
    seqs_by_name = {}
    for name, at in (("before", utc(2026, 11, 27, 5, 59, 59)), ("after", utc(2026, 11, 27, 6, 0, 0))):
        with runtime.uow() as uow:
            entry = audit_chain.append(
                uow.session, actor=SYSTEM, action="user.created", outcome="completed", effective_at=at, subject={}
            )
            uow.commit()
            seqs_by_name[name] = entry.seq
    return Api(app.test_client(), auditor), seqs_by_name


def test_a_date_only_since_or_until_is_that_days_start_in_the_program_zone(chicago):
    api, entry = chicago

    def listed(**params):
        r = api.get(f"/api/v1/audit/events?{urlencode({'action': 'user.created', 'limit': 500, **params})}")
        assert r.status_code == 200, r.json
        return {i["seq"] for i in r.json["items"]} & set(entry.values())

    assert listed(since="2026-11-27") == {entry["after"]}
    assert listed(until="2026-11-27") == {entry["before"]}
    assert listed(since="2026-11-26", until="2026-11-28") == {entry["before"], entry["after"]}
    # The same instants as datetimes with an offset; a UTC midnight would take both.
    assert listed(since="2026-11-27T00:00:00-06:00") == {entry["after"]}
    assert listed(since="2026-11-27T00:00:00Z") == {entry["before"], entry["after"]}
    r = api.get("/api/v1/audit/export?format=ndjson&since=2026-11-27&action=user.created")
    exported = {json.loads(line)["seq"] for line in r.get_data(as_text=True).splitlines()}
    assert exported & set(entry.values()) == {entry["after"]}
    bad = api.get("/api/v1/audit/events?since=2026-11-27T00:00:00")
    assert bad.status_code == 422 and "UTC offset" in json.dumps(bad.json["errors"]["since"])


def test_an_export_is_made_on_a_thread_of_lower_priority_and_stops_with_its_client():
    """Issue 16 (isolation): the chunks are produced on a thread the OS schedules below the
    decisions; a failure there reaches the client's side; a client that goes away stops it."""
    import os
    import threading
    import time

    from rems_service.api.audit import EXPORT_NICENESS, yielding_to_decisions

    seen: list[int] = []

    def chunks():
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        for i in range(100):
            yield f"{i}\n"

    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert "".join(yielding_to_decisions(chunks())) == "".join(f"{i}\n" for i in range(100))
    assert seen == [min(19, own + EXPORT_NICENESS)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own  # the request's thread keeps its own

    def failing():
        yield "a"
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError, match="went away"):
        list(yielding_to_decisions(failing()))

    produced = []

    def endless():
        for i in range(10**9):
            produced.append(i)
            yield "x"

    stream = yielding_to_decisions(endless(), depth=2)
    assert next(stream) == "x"
    stream.close()  # the WSGI server closes the body of a client that went away
    time.sleep(1.2)
    settled = len(produced)
    time.sleep(0.6)
    assert len(produced) == settled < 10
    assert not any(t.name == "audit-export" and t.is_alive() for t in threading.enumerate())
