"""Calls and error checks shared by the tests of issue 18 on the standard fronts: one call per
front, each front's own error format, and reading /metrics."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import NOW
from tests.interop import messages as m

PRESCRIBER_NPI = "1234567893"


def ncpdp(api, rems_id="RP-AAAAA-BBBBB", number="RA-00000-00000-00000"):
    return m.send(api, m.rems_request(number, rems_id))


def fhir(api, rems_id="RP-AAAAA-BBBBB"):
    return m.fhir_post(api, m.etasu(rems_id))


def cds(api, rems_id="RP-AAAAA-BBBBB"):
    return api.post("/cds-services/lenalidomide-rems-order-sign", json=m.hook("order-sign", rems_id, PRESCRIBER_NPI))


def ncpdp_error(response, status):
    assert response.status_code == status, response.data
    assert response.mimetype == "application/xml"
    root = m.reply(response)
    assert m.at(root, "Body/Error/Code") == "900"
    return m.at(root, "Body/Error/Description")


def fhir_error(response, status, code):
    assert response.status_code == status, response.data
    assert response.mimetype == "application/fhir+json" and response.json["resourceType"] == "OperationOutcome"
    (issue,) = response.json["issue"]
    assert issue["code"] == code
    return issue["diagnostics"]


def cds_error(response, status):
    assert response.status_code == status, response.data
    assert response.mimetype == "application/json" and response.json["code"] == status
    return response.json["message"]


def refused_in_each_format(world, token):
    api = world.api.as_(token).at(NOW)
    assert "bearer token" in ncpdp_error(ncpdp(api), 401)
    assert "bearer token" in fhir_error(fhir(api), 401, "login")
    assert "bearer token" in cds_error(cds(api), 401)


def scrape(world):
    r = world.api.as_(world.admin).get("/metrics")
    assert r.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(r.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def grew(before, after, name, **labels):
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)
