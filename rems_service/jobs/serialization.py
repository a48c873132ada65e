"""How job payloads are written and read in Redis: JSON, plus what ``rq cron`` writes.

Every job this service enqueues is JSON (ids only). ``rq cron`` (rq 3.0) cannot
be told to write JSON: ``CronJob.enqueue`` builds its queue with RQ's default
pickle serializer, and ``rq cron --serializer`` is not passed on. The worker
therefore reads with ``JobSerializer``: JSON, or a pickle made of plain values
only. A cron job's payload is exactly that — the function's dotted name, no
instance, empty args and kwargs — while a pickle that would import anything
(the only way a pickle runs code) is refused, so Redis never becomes a way to
run code in the worker. This is RQ's documented serializer hook
(``rq worker --serializer <dotted path>``); nothing in RQ is patched.
"""

from __future__ import annotations

import io
import json
import pickle
from typing import Any

#: The first byte of a pickle of protocol 2 or later (RQ's default serializer writes these).
PICKLE_PROTOCOL_MARK = b"\x80"


class PlainValuesUnpickler(pickle.Unpickler):
    """Unpickles plain values (str, bytes, numbers, None, bool, tuples, lists, dicts, sets) only."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused: a job payload may not import {module}.{name}")


class JobSerializer:
    """Writes JSON; reads JSON, or a pickle of plain values (what ``rq cron`` enqueues)."""

    @staticmethod
    def dumps(obj: Any) -> bytes:
        return json.dumps(obj).encode("utf-8")

    @staticmethod
    def loads(data: bytes | str) -> Any:
        if isinstance(data, bytes) and data.startswith(PICKLE_PROTOCOL_MARK):
            return PlainValuesUnpickler(io.BytesIO(data)).load()
        return json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
