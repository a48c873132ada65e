from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import Api, World, make_world


@pytest.fixture
def world(app: Any, runtime: Any) -> World:
    return make_world(Api(app.test_client()), runtime)
