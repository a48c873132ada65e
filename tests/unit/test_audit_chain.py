"""R-AUD-2: canonical serialization and chain verification, pure."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from workflows.audit import GENESIS_HASH, canonical_json, chain_hash, digest, verify_entries


def test_canonical_json_is_order_and_zone_independent():
    t = datetime(2026, 1, 1, 12, tzinfo=UTC)
    a = {"b": 1, "a": [t, uuid.UUID(int=1)]}
    b = {"a": [t.astimezone(timezone(timedelta(hours=5))), uuid.UUID(int=1)], "b": 1}
    assert canonical_json(a) == canonical_json(b)
    assert (
        canonical_json(a) == '{"a":["2026-01-01T12:00:00.000000+00:00","00000000-0000-0000-0000-000000000001"],"b":1}'
    )
    assert digest(a) == digest(b)


def test_canonical_json_refuses_naive_datetimes_and_nan():
    with pytest.raises(ValueError):
        canonical_json({"t": datetime(2026, 1, 1)})
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def build(n):
    entries, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        content = {"seq": seq, "action": "x", "n": seq * 7}
        h = chain_hash(prev, content)
        entries.append((seq, prev, h, content))
        prev = h
    return entries


def test_intact_chain_verifies():
    check = verify_entries(build(50))
    assert check.valid and check.checked == 50 and check.head_seq == 50


@pytest.mark.parametrize(
    "mutate, first_bad",
    [
        (lambda e: e[9][3].update(n=0), 10),
        (lambda e: e.pop(19), 20),
        (lambda e: e.__setitem__(slice(4, 6), [e[5], e[4]]), 5),
        (lambda e: e.insert(30, (31, e[29][2], chain_hash(e[29][2], {"forged": 1}), {"forged": 1})), 32),
    ],
    ids=["edit", "delete", "swap", "insert"],
)
def test_mutations_name_the_first_bad_seq(mutate, first_bad):
    entries = build(50)
    mutate(entries)
    check = verify_entries(entries)
    assert not check.valid and check.first_invalid_seq == first_bad


def test_a_presumed_canonical_text_is_a_shortcut_never_a_way_around_the_hash():
    from workflows.audit import PresumedCanonical, hash_matches

    content = {"seq": 1, "details": {"b": "é", "a": [1, None]}}
    stored = chain_hash(GENESIS_HASH, content)
    calls = []

    def build():
        calls.append(1)
        return content

    assert hash_matches(GENESIS_HASH, PresumedCanonical(canonical_json(content), build), stored) and not calls
    # Not the canonical text (other whitespace): the content is built and hashed the defining way.
    assert hash_matches(
        GENESIS_HASH, PresumedCanonical('{"seq": 1, "details": {"b": "é", "a": [1, null]}}', build), stored
    )
    assert calls == [1]
    changed = {**content, "seq": 2}
    assert not hash_matches(GENESIS_HASH, PresumedCanonical(canonical_json(changed), lambda: changed), stored)
