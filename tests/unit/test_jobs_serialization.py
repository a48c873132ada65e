"""The worker's job serializer: JSON out; JSON or a plain-values pickle (rq cron's) in."""

from __future__ import annotations

import os
import pickle

import pytest
from rq.serializers import JSONSerializer, PickleSerializer, resolve_serializer

from rems_service.jobs.serialization import JobSerializer


def test_it_writes_what_rq_json_writes_and_reads_it_back():
    payload = ("rems_service.jobs.handlers.handle_event", None, ["0b8c1f1e"], {})
    assert JobSerializer.dumps(payload) == JSONSerializer.dumps(payload)
    assert JobSerializer.loads(JobSerializer.dumps(payload)) == [
        "rems_service.jobs.handlers.handle_event",
        None,
        ["0b8c1f1e"],
        {},
    ]


def test_it_reads_the_payload_rq_cron_writes_with_its_default_pickle_serializer():
    """rq cron pickles (func name, instance, args, kwargs): plain values only."""
    payload = ("rems_service.jobs.tasks.run_sweeps", None, (), {})
    assert JobSerializer.loads(PickleSerializer.dumps(payload)) == payload


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_a_pickle_that_would_import_anything_is_refused(protocol):
    """A pickle runs code only through a global it imports: none is ever resolved."""

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    with pytest.raises(pickle.UnpicklingError, match="may not import"):
        JobSerializer.loads(pickle.dumps(Exploit(), protocol=protocol))
    with pytest.raises(pickle.UnpicklingError, match="may not import"):
        JobSerializer.loads(pickle.dumps(("x", None, (os.getcwd,), {}), protocol=protocol))


def test_rq_accepts_it_as_a_serializer_by_its_dotted_path():
    assert resolve_serializer("rems_service.jobs.serialization.JobSerializer") is JobSerializer
