from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import Api, World, make_world


@pytest.fixture
def client(app: Any):
    return app.test_client()


@pytest.fixture
def api(client: Any) -> Api:
    return Api(client)


@pytest.fixture
def world(api: Api, runtime: Any) -> World:
    return make_world(api, runtime)
