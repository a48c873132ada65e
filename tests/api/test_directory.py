"""Program staff's lists (services.directory) and disabling a user (services.users.disable),
on both backends: search by every word in any case, keyset pages, admins only; a disabled
user's token and portal session stop at once."""

from __future__ import annotations

import pytest

from rems_service.services import audit_log, directory, users
from rems_service.services.errors import Conflict, Forbidden, Invalid
from tests.helpers import NOW, VALID_NPIS, make_pharmacy, make_prescriber, make_user
from workflows.actors import SYSTEM, Actor


def admin() -> Actor:
    return SYSTEM


def test_prescribers_search_every_word_in_any_case_by_npi_name_or_email(world):
    uow = world.runtime.uow
    found = directory.prescribers(uow(), admin(), q=VALID_NPIS[1])
    assert [p.id for p in found.items] == [world.other_prescriber.id]
    everyone = directory.prescribers(uow(), admin())
    assert {p.id for p in everyone.items} == {world.prescriber.id, world.other_prescriber.id}
    last = world.prescriber.last_name
    assert [p.id for p in directory.prescribers(uow(), admin(), q=last.upper()).items] == [
        p.id for p in everyone.items if p.last_name == last
    ]
    assert directory.prescribers(uow(), admin(), q=f"{last} nobody-has-this").items == []
    assert directory.prescribers(uow(), admin(), q="100%").items == []  # wildcards are literal


def test_pharmacies_and_users_search_and_filter(world):
    uow = world.runtime.uow
    assert [p.id for p in directory.pharmacies(uow(), admin(), q="7654321").items] == [world.other_pharmacy.id]
    assert directory.pharmacies(uow(), admin(), status="pending").items == []
    make_user(world.runtime, "auditor", email="Ada.Lovelace@example.org")
    found = directory.users(uow(), admin(), q="ada.LOVELACE")
    assert [u.email for u in found.items] == ["ada.lovelace@example.org"]
    auditors = directory.users(uow(), admin(), role="auditor")
    assert auditors.items and {u.role.value for u in auditors.items} == {"auditor"}
    with pytest.raises(Invalid):
        directory.users(uow(), admin(), role="wizard")
    with pytest.raises(Invalid):
        directory.users(uow(), admin(), q="a b c d e f")


def test_pages_continue_after_the_last_key_without_repeats(world):
    uow = world.runtime.uow
    for npi in VALID_NPIS[2:]:
        make_prescriber(world.runtime, npi)
    first = directory.prescribers(uow(), admin(), limit=2)
    assert len(first.items) == 2 and first.next_cursor
    rest = directory.prescribers(uow(), admin(), limit=2, cursor=first.next_cursor)
    more = directory.prescribers(uow(), admin(), limit=2, cursor=rest.next_cursor) if rest.next_cursor else None
    seen = [p.id for p in first.items + rest.items + (more.items if more else [])]
    assert len(seen) == len(set(seen)) == len(VALID_NPIS)
    names = [p.last_name for p in first.items + rest.items + (more.items if more else [])]
    assert names == sorted(names)
    with pytest.raises(Invalid):
        directory.pharmacies(uow(), admin(), cursor=first.next_cursor)  # another listing's cursor


@pytest.mark.parametrize("role", ["auditor", "prescriber", "pharmacist"])
def test_only_admins_list_participants_and_users(world, role):
    actor = Actor(user_id=None, role=role)
    for lister in (directory.prescribers, directory.pharmacies, directory.users):
        with pytest.raises(Forbidden):
            lister(world.runtime.uow(), actor)


def test_filter_choices_are_for_auditors_and_admins(world):
    choices = directory.filter_choices(world.runtime.uow(), Actor(user_id=None, role="auditor"))
    assert {p.id for p in choices.pharmacies} == {world.pharmacy.id, world.other_pharmacy.id}
    with pytest.raises(Forbidden):
        directory.filter_choices(world.runtime.uow(), Actor(user_id=None, role="pharmacist"))


def test_participant_history_is_its_life_cycle_newest_first_and_the_read_is_recorded(world, api):
    pending = make_pharmacy(world.runtime, "2345678", certified=False)
    r = api.as_(world.admin).post(f"/api/v1/pharmacies/{pending.id}/suspend", json={})
    assert r.status_code == 409  # pending cannot be suspended: nothing recorded
    history = audit_log.participant_history(world.runtime.uow(), admin(), NOW, "pharmacy", pending.id)
    assert [e.action for e in history] == ["pharmacy.registered"]
    reads = api.as_(world.auditor).get("/api/v1/audit/events?action=audit.read").json["items"]
    assert reads[0]["details"]["operation"] == "history"


def test_a_disabled_user_stops_at_once_and_is_audited(world, api):
    user, token = make_user(world.runtime, "auditor", email="gone@example.org", password="x" * 12)
    assert api.as_(token).get("/api/v1/me").status_code == 200
    assert users.load_active(world.runtime.uow(), user.id) is not None
    admin_user, _ = make_user(world.runtime, "admin")
    actor = Actor(user_id=admin_user.id, role="admin")
    disabled = users.disable_user(world.runtime.uow(), actor, NOW, user.id)
    assert users.is_disabled(disabled)
    assert api.as_(token).get("/api/v1/me").status_code == 401  # the token
    assert users.load_active(world.runtime.uow(), user.id) is None  # the portal session
    assert users.sign_in(world.runtime.uow(), "gone@example.org", "x" * 12) is None
    entry = api.as_(world.auditor).get("/api/v1/audit/events?action=user.disabled").json["items"][0]
    assert entry["subject"]["user_id"] == str(user.id) and entry["actor"]["role"] == "admin"
    again = users.disable_user(world.runtime.uow(), actor, NOW, user.id)  # already disabled: nothing changes
    assert again.disabled_at == disabled.disabled_at
    with pytest.raises(Conflict):
        users.disable_user(world.runtime.uow(), actor, NOW, admin_user.id)  # oneself
