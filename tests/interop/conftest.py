from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.helpers import TRAINED, Api, make_pharmacy, make_prescriber, make_user


@dataclass
class World:
    """Two prescribers and two pharmacies, each with a user, plus staff (as tests/api)."""

    api: Api
    runtime: Any
    admin: str
    auditor: str
    prescriber: Any
    prescriber_token: str
    other_prescriber: Any
    other_prescriber_token: str
    pharmacy: Any
    pharmacist_token: str
    other_pharmacy: Any
    other_pharmacist_token: str


@pytest.fixture
def world(app: Any, runtime: Any) -> World:
    prescriber = make_prescriber(runtime, "1234567893")
    other = make_prescriber(runtime, "1245319599")
    pharmacy = make_pharmacy(runtime, "1234567")
    other_pharmacy = make_pharmacy(runtime, "7654321")
    return World(
        api=Api(app.test_client()),
        runtime=runtime,
        admin=make_user(runtime, "admin")[1],
        auditor=make_user(runtime, "auditor")[1],
        prescriber=prescriber,
        prescriber_token=make_user(runtime, "prescriber", prescriber_id=prescriber.id)[1],
        other_prescriber=other,
        other_prescriber_token=make_user(runtime, "prescriber", prescriber_id=other.id)[1],
        pharmacy=pharmacy,
        pharmacist_token=make_user(runtime, "pharmacist", pharmacy_id=pharmacy.id, training_completed_at=TRAINED)[1],
        other_pharmacy=other_pharmacy,
        other_pharmacist_token=make_user(
            runtime, "pharmacist", pharmacy_id=other_pharmacy.id, training_completed_at=TRAINED
        )[1],
    )
