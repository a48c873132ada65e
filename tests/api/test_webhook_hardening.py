"""Issue 18, webhooks: targets that cannot reach inside (SSRF), a slow receiver that delays
nobody, coarse delivery outcomes, a subscription cap, timestamped signatures and secret
rotation (API.md, Webhooks)."""

from __future__ import annotations

import hashlib
import hmac
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from rems_service.db.models import WebhookDelivery, WebhookSubscription
from rems_service.jobs import tasks
from rems_service.jobs.dispatch import background_for
from rems_service.services import webhook_targets
from tests.helpers import ADULT_MALE, approved_authorization, authorize, enroll, signature_ok
from tests.receiver import Receiver

#: The answer the fake resolver gives any name a test did not map (no DNS in tests).
PUBLIC_ADDRESS = "93.184.215.14"

#: Item 1's twenty targets: (url, reachable on loopback). Those marked True resolve to
#: loopback and are accepted only where WEBHOOK_ALLOW_LOOPBACK is on; the others never.
SSRF_URLS = [
    ("http://169.254.169.254/latest/meta-data/iam/security-credentials/", False),  # cloud metadata
    ("http://[fd00:ec2::254]/latest/meta-data/", False),  # IPv6 metadata (unique-local)
    ("http://10.0.0.1/admin", False),  # RFC 1918
    ("http://192.168.1.1:8080/", False),  # RFC 1918
    ("http://[fd12:3456:789a::1]/", False),  # IPv6 unique-local
    ("http://[fe80::1]/", False),  # IPv6 link-local
    ("http://0.0.0.0:5432/", False),  # unspecified
    ("http://[::]/", False),  # IPv6 unspecified
    ("http://2852039166/", False),  # 169.254.169.254, decimal
    ("http://0xA9FEA9FE/", False),  # 169.254.169.254, hexadecimal
    ("http://[::ffff:169.254.169.254]/", False),  # IPv4-mapped IPv6
    ("http://100.64.0.1/", False),  # shared address space (CGNAT)
    ("http://224.0.0.1/", False),  # multicast
    ("http://240.0.0.1/", False),  # reserved
    ("http://127.0.0.1:6379/", True),  # loopback (Redis)
    ("http://localhost:5432/", True),  # loopback by name
    ("http://[::1]/", True),  # IPv6 loopback
    ("http://2130706433/", True),  # 127.0.0.1, decimal
    ("http://0x7f000001/", True),  # 127.0.0.1, hexadecimal
    ("http://127.0.0.2:8080/", True),  # the rest of 127.0.0.0/8
]
#: Refused whatever the setting: credentials in the URL (one hiding a loopback host behind
#: them), and an octal host (refused as a URL form; the address check judges it too, below).
ALWAYS_REFUSED = [
    "http://0177.0.0.1/",
    "https://user:secret@hooks.example/x",
    "https://hooks.example@169.254.169.254/x",
    "http://0177.0.0.1@hooks.example/",
]


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch):
    """Names resolve to a public address, except those a test maps elsewhere; numeric hosts
    and ``localhost`` go to the system resolver (``inet_aton`` rules: decimal, hex, octal)."""
    answers: dict[str, list[str]] = {}

    def resolve(host: str, port: int) -> list[str]:
        if host in answers:
            return answers[host]
        if host == "localhost" or host[:1].isdigit():
            return webhook_targets.system_resolve(host, port)
        return [PUBLIC_ADDRESS]

    monkeypatch.setattr(webhook_targets, "resolve", resolve)
    return answers


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def hooks_app(world, make_app, **settings):
    """Serve the world's database with an app of these settings (relaying after requests)."""
    app = make_app(RELAY_AFTER_REQUEST=True, **settings)
    world.api.client = app.test_client()
    world.runtime = app.extensions["rems"]
    return world


def settle(world, timeout=60):
    assert background_for(world.runtime).wait_idle(timeout)


def post_hook(world, token, url, events=("authorization.issued",)):
    return world.api.as_(token).post("/api/v1/webhooks", json={"url": url, "events": list(events)})


def subscribe(world, token, url, events=("authorization.issued",)):
    r = post_hook(world, token, url, events)
    assert r.status_code == 201, r.json
    return r.json


def subscription_count(world):
    with world.runtime.session() as s:
        return len(s.exec(select(WebhookSubscription)).all())


# -- SSRF -------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [u for u, _ in SSRF_URLS] + ALWAYS_REFUSED)
def test_internal_targets_are_refused_by_default(world, url):
    """Without the sandbox setting, none of the twenty is accepted: 422 naming `url`."""
    r = post_hook(world, world.prescriber_token, url)
    assert r.status_code == 422 and "url" in r.json["errors"], r.json
    assert subscription_count(world) == 0


def test_loopback_only_with_the_explicit_setting(world, make_app):
    world = hooks_app(world, make_app, WEBHOOK_ALLOW_LOOPBACK=True)
    accepted = {url for url, loopback in SSRF_URLS if post_hook(world, world.admin, url).status_code == 201}
    assert accepted == {url for url, loopback in SSRF_URLS if loopback}
    for url in ALWAYS_REFUSED:
        assert post_hook(world, world.admin, url).status_code == 422, url


@pytest.mark.parametrize(
    "url, address",
    [
        ("http://0177.0.0.1/", "127.0.0.1"),
        ("http://0x7f.1/", "127.0.0.1"),
        ("http://127.1/", "127.0.0.1"),
        ("http://2130706433/", "127.0.0.1"),
        ("http://0251.0376.0251.0376/", "169.254.169.254"),
        ("http://[::ffff:7f00:1]/", "::ffff:7f00:1"),
    ],
)
def test_encoded_hosts_are_judged_by_the_address_they_reach(url, address):
    refused = webhook_targets.TargetPolicy(require_https=False, allow_loopback=False)
    with pytest.raises(webhook_targets.TargetRefused):
        webhook_targets.check(url, refused)
    if not address.startswith("169."):
        allowed = webhook_targets.TargetPolicy(require_https=False, allow_loopback=True)
        assert webhook_targets.check(url, allowed).address == address


def test_names_are_judged_by_the_addresses_they_resolve_to(world, fake_dns):
    fake_dns["metadata.attacker.example"] = ["169.254.169.254"]
    fake_dns["mixed.attacker.example"] = [PUBLIC_ADDRESS, "10.1.2.3"]  # every answer must be public
    fake_dns["mapped.attacker.example"] = ["::ffff:10.0.0.1"]
    for host in ("metadata.attacker.example", "mixed.attacker.example", "mapped.attacker.example"):
        r = post_hook(world, world.pharmacist_token, f"https://{host}/hook")
        assert r.status_code == 422 and "url" in r.json["errors"], (host, r.json)
    assert post_hook(world, world.pharmacist_token, "https://hooks.partner.example/rems").status_code == 201


def test_a_name_resolving_slowly_holds_nobody(world, make_app, monkeypatch):
    """A name whose DNS answers slowly on purpose is refused when its lookup passes the
    resolve deadline, instead of holding the request (and a web worker) as long as it likes."""
    world = hooks_app(world, make_app, WEBHOOK_RESOLVE_TIMEOUT_SECONDS=0.5)
    slow_seconds = 20.0
    released = threading.Event()

    def slow_resolve(host, port):
        released.wait(slow_seconds)
        return [PUBLIC_ADDRESS]

    monkeypatch.setattr(webhook_targets, "resolve", slow_resolve)
    try:
        r, seconds = _timed(lambda: post_hook(world, world.prescriber_token, "https://slow.attacker.example/x"))
        assert r.status_code == 422 and r.json["errors"]["url"] == [
            "The host 'slow.attacker.example' did not resolve in time."
        ]
        assert seconds < slow_seconds / 4
    finally:
        released.set()


def test_https_is_required_where_the_setting_says_so(world, make_app):
    world = hooks_app(world, make_app, WEBHOOK_REQUIRE_HTTPS=True)
    r = post_hook(world, world.prescriber_token, "http://hooks.partner.example/rems")
    assert r.status_code == 422 and r.json["errors"]["url"] == ["The URL must be https."]
    assert post_hook(world, world.prescriber_token, "https://hooks.partner.example/rems").status_code == 201


def test_production_refuses_loopback_and_plain_http():
    from config.settings import ConfigurationError, load_settings

    settings = load_settings({"REMS_ENV": "production", "DATABASE_URL": "postgresql+psycopg://x@db/rems"})
    assert settings["WEBHOOK_REQUIRE_HTTPS"] and not settings["WEBHOOK_ALLOW_LOOPBACK"]
    with pytest.raises(ConfigurationError):
        load_settings(
            {
                "REMS_ENV": "production",
                "DATABASE_URL": "postgresql+psycopg://x@db/rems",
                "REMS_WEBHOOK_ALLOW_LOOPBACK": "1",
            }
        )


def test_the_target_is_checked_again_at_delivery(world, make_app, fake_dns, receiver):
    """A name that resolved to a public address when subscribed and to an internal one
    when delivered (DNS rebinding) gets nothing; the subscriber sees `unreachable` only."""
    world = hooks_app(world, make_app)
    port = receiver.server.server_address[1]
    hook = subscribe(world, world.prescriber_token, f"http://rebind.attacker.example:{port}/hook")
    fake_dns["rebind.attacker.example"] = ["127.0.0.1"]  # the receiver's address, loopback not allowed
    approved_authorization(world)
    settle(world)
    assert receiver.received == []
    (delivery,) = world.api.as_(world.prescriber_token).get(f"/api/v1/webhooks/{hook['id']}/deliveries").json["items"]
    assert delivery["last_outcome"] == "unreachable" and delivery["log"][0]["outcome"] == "unreachable"
    assert "error" not in delivery["log"][0] and "127.0.0.1" not in str(delivery)
    (admin_view,) = world.api.as_(world.admin).get(f"/api/v1/webhooks/{hook['id']}/deliveries").json["items"]
    assert "loopback" in admin_view["log"][0]["error"]  # operators see why


def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(world, make_app, fake_dns, receiver):
    world = hooks_app(world, make_app, WEBHOOK_ALLOW_LOOPBACK=True)
    port = receiver.server.server_address[1]
    fake_dns["hooks.partner.example"] = ["127.0.0.1"]
    subscribe(world, world.prescriber_token, f"http://hooks.partner.example:{port}/in?src=rems")
    approved_authorization(world)
    assert receiver.wait_for(1)
    assert receiver.received[0].headers["Host"] == f"hooks.partner.example:{port}"


def _openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def tls_files(tmp_path):
    """A test CA, and a certificate it signed for ``hooks.partner.example`` (openssl's CLI)."""
    if shutil.which("openssl") is None:  # pragma: no cover - Debian images have it
        pytest.skip("openssl is not installed")
    (tmp_path / "san.ext").write_text("subjectAltName=DNS:hooks.partner.example\n")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=REMS test CA", cwd=tmp_path)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
             "-subj", "/CN=hooks.partner.example", cwd=tmp_path)  # fmt: skip
    _openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "srv.pem", "-days", "2", "-extfile", "san.ext", cwd=tmp_path)  # fmt: skip
    return tmp_path


def test_https_is_pinned_to_the_checked_address_and_verifies_the_name(world, make_app, fake_dns, tls_files):
    """Over https the connection goes to the checked address, asks for the URL's name (SNI)
    and verifies the certificate against it: a certificate for another name is refused."""
    world = hooks_app(
        world,
        make_app,
        WEBHOOK_ALLOW_LOOPBACK=True,
        WEBHOOK_REQUIRE_HTTPS=True,
        WEBHOOK_CA_BUNDLE=str(tls_files / "ca.pem"),
    )
    tls = Receiver(tls=(str(tls_files / "srv.pem"), str(tls_files / "srv.key")))
    try:
        port = tls.server.server_address[1]
        fake_dns["hooks.partner.example"] = ["127.0.0.1"]
        fake_dns["other.partner.example"] = ["127.0.0.1"]
        good = subscribe(world, world.prescriber_token, f"https://hooks.partner.example:{port}/in")
        wrong = subscribe(world, world.prescriber_token, f"https://other.partner.example:{port}/in")
        approved_authorization(world)
        settle(world)
        assert len(tls.received) == 1 and tls.received[0].headers["Host"] == f"hooks.partner.example:{port}"
        assert "hooks.partner.example" in tls.server_names
        outcomes = {}
        for hook in (good, wrong):
            (d,) = world.api.as_(world.admin).get(f"/api/v1/webhooks/{hook['id']}/deliveries").json["items"]
            outcomes[hook["id"]] = (d["last_outcome"], d["last_error"] or "")
        assert outcomes[good["id"]][0] == "delivered"
        assert outcomes[wrong["id"]][0] == "unreachable" and "other.partner.example" in outcomes[wrong["id"]][1]
    finally:
        tls.close()


def test_a_huge_answer_is_read_up_to_the_cap_only(world, make_app, receiver):
    world = hooks_app(world, make_app, WEBHOOK_ALLOW_LOOPBACK=True, WEBHOOK_MAX_RESPONSE_BYTES=65536)
    receiver.reply_bytes = 512 * 1024 * 1024  # half a gigabyte announced and offered
    hook = subscribe(world, world.prescriber_token, receiver.url)
    approved_authorization(world)
    settle(world)
    (delivery,) = world.api.as_(world.prescriber_token).get(f"/api/v1/webhooks/{hook['id']}/deliveries").json["items"]
    assert delivery["last_outcome"] == "delivered"
    # The connection was closed after the cap: the receiver could not push it all.
    assert receiver.sent_bytes < receiver.reply_bytes / 8


def test_redirects_are_not_followed(world, make_app, receiver):
    world = hooks_app(world, make_app, WEBHOOK_ALLOW_LOOPBACK=True)
    inside = Receiver()
    try:
        receiver.statuses = [302]
        receiver.reply_headers = {"Location": inside.url}
        hook = subscribe(world, world.prescriber_token, receiver.url)
        approved_authorization(world)
        settle(world)
        assert len(receiver.received) == 1 and inside.received == []
        (delivery,) = (
            world.api.as_(world.prescriber_token).get(f"/api/v1/webhooks/{hook['id']}/deliveries").json["items"]
        )
        assert (delivery["status"], delivery["last_outcome"], delivery["last_status_code"]) == (
            "pending",
            "refused",
            302,
        )
    finally:
        inside.close()


def test_subscribers_see_coarse_outcomes_never_raw_errors(world, make_app):
    world = hooks_app(world, make_app, WEBHOOK_ALLOW_LOOPBACK=True)
    closed = Receiver()
    closed.close()  # nothing listens there any more: connection refused
    hook = subscribe(world, world.pharmacist_token, closed.url, ["dispense.approved"])
    hook_a = subscribe(world, world.prescriber_token, closed.url)
    approved_authorization(world)
    settle(world)
    (delivery,) = world.api.as_(world.prescriber_token).get(f"/api/v1/webhooks/{hook_a['id']}/deliveries").json["items"]
    assert delivery["last_outcome"] == "unreachable" and delivery["last_status_code"] is None
    assert set(delivery["log"][0]) == {"attempt", "attempted_at", "outcome", "status_code", "duration_ms"}
    assert "last_error" not in delivery
    (admin_view,) = world.api.as_(world.admin).get(f"/api/v1/webhooks/{hook_a['id']}/deliveries").json["items"]
    assert "refused" in admin_view["last_error"].lower() or "Connection" in admin_view["last_error"]
    assert world.api.as_(world.pharmacist_token).get(f"/api/v1/webhooks/{hook['id']}/deliveries").json["items"] == []


def test_subscriptions_per_owner_are_capped(world, make_app):
    world = hooks_app(world, make_app, WEBHOOK_MAX_SUBSCRIPTIONS=3)
    ids = [subscribe(world, world.prescriber_token, f"https://hooks.partner.example/{n}")["id"] for n in range(3)]
    r = post_hook(world, world.prescriber_token, "https://hooks.partner.example/3")
    assert r.status_code == 409 and "url" in r.json["errors"], r.json
    # Another owner has a cap of its own; a deleted subscription frees its place.
    assert post_hook(world, world.other_prescriber_token, "https://hooks.partner.example/b").status_code == 201
    assert world.api.as_(world.prescriber_token).request("DELETE", f"/api/v1/webhooks/{ids[0]}").status_code == 204
    assert post_hook(world, world.prescriber_token, "https://hooks.partner.example/3").status_code == 201


# -- one tenant stalls nobody -----------------------------------------------------------------


def _timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_a_trickling_receiver_delays_no_other_caller(world, make_app):
    """Prescriber A's receiver answers one byte a second (its answer takes ~80 s). While its
    delivery is in flight, 20 decisions of A and B and /healthz are answered as usual:
    deliveries run on background threads, never in a request's path, and the attempt
    is cut at its total deadline although every single read is within the read timeout."""
    world = hooks_app(
        world, make_app, WEBHOOK_ALLOW_LOOPBACK=True, WEBHOOK_TIMEOUT_SECONDS=5.0, WEBHOOK_TOTAL_TIMEOUT_SECONDS=6.0
    )
    trickle = Receiver(trickle=1.0)
    try:
        trickle_seconds = len(Receiver.trickled_answer()) * trickle.trickle
        patient_b = enroll(world, ADULT_MALE, token=world.other_prescriber_token).json  # not ready: denials
        patient_a = enroll(world, ADULT_MALE).json

        def twenty_decisions():
            answers = []
            for _ in range(10):
                answers.append(_timed(lambda: authorize(world, patient_a)))
                answers.append(_timed(lambda: authorize(world, patient_b, token=world.other_prescriber_token)))
            return answers

        baseline = twenty_decisions()
        settle(world)
        subscribe(world, world.prescriber_token, trickle.url)
        started = time.monotonic()
        approved_authorization(world)  # A's approval: its event goes to the trickling receiver
        assert trickle.arrived.wait(30), "the delivery reached the receiver"
        during = twenty_decisions()
        health, health_seconds = _timed(lambda: world.api.get("/healthz"))
        elapsed = time.monotonic() - started
        assert all(r.status_code == 201 for r, _ in baseline + during)
        assert health.status_code == 200
        slowest_baseline = max(s for _, s in baseline)
        slowest = max([s for _, s in during] + [health_seconds])
        # Loose: not blocked by the trickle (which alone takes trickle_seconds).
        assert slowest < trickle_seconds / 4, (slowest, slowest_baseline)
        assert elapsed < trickle_seconds / 2, "all twenty were answered while the trickle went on"
        settle(world)
        with world.runtime.session() as s:
            (delivery,) = s.exec(select(WebhookDelivery)).all()
        assert delivery.last_outcome == "timed_out" and delivery.status == "pending"  # retried later
    finally:
        trickle.close()


# -- signatures -------------------------------------------------------------------------------


def _timestamped(header: str) -> tuple[int, list[str]]:
    parts = [p.split("=", 1) for p in header.split(",")]
    assert parts[0][0] == "t"
    return int(parts[0][1]), [v for k, v in parts[1:] if k == "v1"]


def _v1(secret: str, t: int, raw: bytes) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()


def test_deliveries_carry_a_timestamped_signature(world, make_app, receiver):
    world = hooks_app(world, make_app, WEBHOOK_ALLOW_LOOPBACK=True)
    hook = subscribe(world, world.prescriber_token, receiver.url)
    before = int(time.time())
    approved_authorization(world)
    assert receiver.wait_for(1)
    got = receiver.received[0]
    t, signatures = _timestamped(got.headers["X-Rems-Timestamped-Signature"])
    assert before <= t <= int(time.time())
    assert signatures == [_v1(hook["secret"], t, got.raw)]
    assert signature_ok(hook["secret"], got)  # X-Rems-Signature unchanged beside it


def test_rotating_the_secret(world, make_app, receiver):
    world = hooks_app(world, make_app, WEBHOOK_ALLOW_LOOPBACK=True)
    hook = subscribe(world, world.prescriber_token, receiver.url)
    path = f"/api/v1/webhooks/{hook['id']}/secret"
    assert world.api.as_(world.other_prescriber_token).post(path).status_code == 404
    assert world.api.as_(world.auditor).post(path).status_code == 403
    assert world.api.as_(world.prescriber_token).post(path, json={"previous_valid_seconds": -1}).status_code == 422

    rotated = world.api.as_(world.prescriber_token).post(path)
    assert rotated.status_code == 200, rotated.json
    new = rotated.json["secret"]
    assert new != hook["secret"] and len(new) == 64 and rotated.json["previous_secret_expires_at"]
    approved_authorization(world)
    assert receiver.wait_for(1)
    got = receiver.received[0]
    assert signature_ok(new, got) and not signature_ok(hook["secret"], got)
    t, signatures = _timestamped(got.headers["X-Rems-Timestamped-Signature"])
    assert signatures == [_v1(new, t, got.raw), _v1(hook["secret"], t, got.raw)]  # the old one, for a while

    # After a leak: rotate with no grace, and the leaked secret signs nothing any more.
    leaked = new
    again = world.api.as_(world.prescriber_token).post(path, json={"previous_valid_seconds": 0}).json
    assert again["previous_secret_expires_at"] is None
    approved_authorization(world)
    assert receiver.wait_for(2)
    got = receiver.received[1]
    t, signatures = _timestamped(got.headers["X-Rems-Timestamped-Signature"])
    assert signatures == [_v1(again["secret"], t, got.raw)] and not signature_ok(leaked, got)
    listed = world.api.as_(world.prescriber_token).get("/api/v1/webhooks").json["items"]
    assert all("secret" not in item for item in listed)


def test_a_retry_is_signed_anew(world, make_app, receiver):
    world = hooks_app(world, make_app, WEBHOOK_ALLOW_LOOPBACK=True)
    receiver.statuses = [500]
    hook = subscribe(world, world.prescriber_token, receiver.url)
    approved_authorization(world)
    settle(world)
    time.sleep(1.1)  # the next second: a new timestamp
    tasks.run_sweeps(world.runtime, datetime.now(UTC) + timedelta(hours=1))
    assert len(receiver.received) == 2
    (t1, _), (t2, sig2) = (_timestamped(r.headers["X-Rems-Timestamped-Signature"]) for r in receiver.received)
    assert t2 > t1 and sig2 == [_v1(hook["secret"], t2, receiver.received[1].raw)]


def test_the_openapi_document_describes_deliveries_and_rotation(api):
    spec = api.get("/api/v1/openapi.json").json
    (callback,) = spec["paths"]["/api/v1/webhooks"]["post"]["callbacks"]["event"].values()
    headers = {p["name"] for p in callback["post"]["parameters"]}
    assert {"X-Rems-Signature", "X-Rems-Timestamped-Signature", "X-Rems-Delivery"} <= headers
    rotate = spec["paths"]["/api/v1/webhooks/{webhook_id}/secret"]["post"]
    assert "previous_valid_seconds" in str(rotate) and "200" in rotate["responses"]
