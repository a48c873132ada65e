"""Decision snapshots as plain data, and back.

A decision reads only a snapshot: frozen dataclasses of plain values. The
audit log digests the snapshot's canonical JSON and the decision record
keeps that JSON, so ``load`` must rebuild exactly the snapshot that was
decided on; ``dump(load(cls, dump(s))) == dump(s)`` is tested.

A field added to a snapshot class later is named in the class's
``LEGACY_DEFAULTS`` (a ClassVar mapping field → the value it had before it
existed, None): a snapshot stored before the field lacks it and loads with
that value, and the decision code treats it as "not known then" so the old
decision replays unchanged. The field itself stays required, so code that
builds a snapshot now can never leave it out. Any other missing or unknown
field is an error.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from datetime import date, datetime
from enum import Enum
from typing import Any, TypeVar

from .audit import canonical_json

T = TypeVar("T")


def dump(snapshot: Any) -> dict[str, Any]:
    """The snapshot as JSON-ready data (the form the audit digest covers)."""
    data: dict[str, Any] = json.loads(canonical_json(_plain(snapshot)))
    return data


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """``dataclasses.asdict`` without its deep copies (the JSON encoding copies anyway):
    dataclasses become dicts of their fields, recursively; the JSON text is the same."""
    kind = type(value)
    if kind in (str, int, float, bool) or value is None:
        return value
    names = _FIELD_NAMES.get(kind)
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def load(cls: type[T], data: Any) -> T:
    """Rebuild a snapshot dataclass from ``dump``'s output.

    Raises ``ValueError`` if the data does not fit the class (a stored
    snapshot that cannot be read back is never silently patched up).
    """
    snapshot: T = _convert(cls, data)
    return snapshot


def _convert(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ValueError(f"None is not a {tp}")
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value)
    if value is None:
        raise ValueError(f"missing value for {tp}")
    if origin is tuple:
        (inner, _ellipsis) = typing.get_args(tp)
        return tuple(_convert(inner, v) for v in value)
    if origin is dict or tp is dict:
        return dict(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        fields = dataclasses.fields(tp)
        names = {f.name for f in fields}
        legacy: dict[str, Any] = dict(getattr(tp, "LEGACY_DEFAULTS", {}))
        optional = {f.name for f in fields if f.default is not dataclasses.MISSING} | set(legacy)
        if not names - optional <= set(value) <= names:
            raise ValueError(f"{tp.__name__}: expected fields {sorted(names)}, got {sorted(value)}")
        present = {name: _convert(hints[name], value[name]) for name in names if name in value}
        return tp(**{**{k: v for k, v in legacy.items() if k not in present}, **present})
    if tp is datetime:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}")
        return parsed
    if tp is date:
        return date.fromisoformat(value)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{value!r} is not a boolean")
        return value
    if tp in (int, float, str):
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, tp) or isinstance(value, bool):
            raise ValueError(f"{value!r} is not a {tp.__name__}")
        return value
    raise ValueError(f"unsupported snapshot type {tp!r}")
