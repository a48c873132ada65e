"""The ``Rule`` and ``Code`` enums are held equal to the rule catalogues.

What the enums cover, and why:

- ``Rule`` lists every rule ID *defined* in ``REMS_RULES.md`` (a bold
  ``**R-XXX-N (C|S|P)**`` entry) and in ``CLINICAL_RULES.md`` (a bold entry or
  a row of its advisory table), exactly: one enum for both catalogues, as the
  design asks. A catalogued rule may be listed before it is enforced (the
  clinical rules, R-AUTH-5, R-DISP-6 and R-SURV-3 are catalogued ahead of their
  code); what can never happen is citing an ID that is *not* catalogued:
  ``Reason`` converts its rule to ``Rule`` (so an unknown ID raises), and every
  ``R-XXX-N`` written anywhere in ``workflows/`` or ``rems_service/`` (code,
  messages, docstrings) must be a catalogued ID.
- ``Code`` lists the reason codes of ``REMS_RULES.md``'s "Reason codes"
  section plus the two of ``CLINICAL_RULES.md``'s "The two rules that can
  refuse" (which ``REMS_RULES.md`` announces), exactly: again including
  catalogued codes not yet issued (``QUANTITY_EXCEEDED``, ``TREATMENT_ON_HOLD``,
  ``CLINICAL_ALERT_UNACKNOWLEDGED``).

The project carries the catalogues it implements in ``docs/catalogues/`` (a
clone has them; CI checks against them). Where the team's ``shared/`` folder
stands beside the project, the copies must equal it, so a catalogue change
there fails here until the copy, and then the enums, follow.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from workflows.reasons import Reason
from workflows.rules import Code, Rule

ROOT = Path(__file__).resolve().parents[2]
CATALOGUES = ROOT / "docs" / "catalogues"
SHARED = ROOT / ".." / "shared"
REMS_RULES = CATALOGUES / "REMS_RULES.md"
CLINICAL_RULES = CATALOGUES / "CLINICAL_RULES.md"

RULE_ID = r"R-[A-Z]+-\d+"
#: A rule's definition: a bold entry ``**R-PREG-1 (C)**`` or a table row ``| R-CBC-1 (P) |``.
DEFINITION = re.compile(rf"(?:\*\*({RULE_ID}) \([CSP]\)\*\*|^\| ({RULE_ID}) \([CSP]\) \|)", re.MULTILINE)
#: A reason code written as code: ``PATIENT_NOT_ELIGIBLE``.
CODE = re.compile(r"`([A-Z]+(?:_[A-Z]+)+)`")


def catalogue(path: Path) -> str:
    assert path.is_file(), f"the project's copy of {path.name} is missing from docs/catalogues/"
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["REMS_RULES.md", "CLINICAL_RULES.md"])
def test_the_projects_copy_of_each_catalogue_equals_the_teams(name):
    shared = SHARED / name
    if not shared.is_file():
        pytest.skip(f"no shared/{name} beside the project (a plain clone): the project's copy is the reference")
    assert (CATALOGUES / name).read_text(encoding="utf-8") == shared.read_text(encoding="utf-8"), (
        f"shared/{name} changed: copy it to docs/catalogues/ and bring the Rule and Code enums along"
    )


def section(text: str, heading: str) -> str:
    """The body of the ``## heading`` section, up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"no '## {heading}' section"
    return match.group(1)


def defined_rules(text: str) -> set[str]:
    ids = [a or b for a, b in DEFINITION.findall(text)]
    assert len(ids) == len(set(ids)), f"a rule is defined twice: {sorted(ids)}"
    return set(ids)


def test_rule_is_exactly_the_rule_ids_the_catalogues_define():
    defined = defined_rules(catalogue(REMS_RULES)) | defined_rules(catalogue(CLINICAL_RULES))
    assert {rule.value for rule in Rule} == defined


def test_every_rule_id_a_catalogue_mentions_is_defined_in_one():
    defined = {rule.value for rule in Rule}
    for path in (REMS_RULES, CLINICAL_RULES):
        mentioned = set(re.findall(rf"\b{RULE_ID}\b", catalogue(path)))
        assert mentioned - defined == set(), path.name


def test_rule_members_are_named_after_their_id():
    assert [rule.name for rule in Rule] == [rule.value.replace("-", "_") for rule in Rule]


def test_code_is_exactly_the_catalogued_reason_codes():
    rems = CODE.findall(section(catalogue(REMS_RULES), "Reason codes"))
    clinical = CODE.findall(section(catalogue(CLINICAL_RULES), "The two rules that can refuse"))
    assert len(clinical) >= 2 and set(clinical) <= set(
        CODE.findall(section(catalogue(REMS_RULES), "Standards the rules map onto"))
    ), "REMS_RULES.md announces CLINICAL_RULES.md's reason codes"
    assert {code.value for code in Code} == set(rems) | set(clinical)
    assert [code.name for code in Code] == [code.value for code in Code]


SOURCE_DIRS = ("workflows", "rems_service")


def test_every_rule_id_written_in_the_code_is_catalogued():
    known = {rule.value for rule in Rule}
    unknown = []
    for directory in SOURCE_DIRS:
        for path in sorted((ROOT / directory).rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                unknown += [
                    f"{path.relative_to(ROOT)}:{number}: {rule_id}"
                    for rule_id in re.findall(rf"\b{RULE_ID}\b", line)
                    if rule_id not in known
                ]
    assert unknown == []


def test_a_reason_refuses_a_rule_or_code_outside_the_catalogues():
    with pytest.raises(ValueError):
        Reason(Code.EARLY_REFILL, "R-DISP-99", "no such rule", "none")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Reason("NOT_A_CODE", Rule.R_DISP_3, "no such code", "none")  # type: ignore[arg-type]


def test_a_reason_is_stored_exactly_as_before_the_enum():
    """Stored decisions and audit entries are replayed and compared as text."""
    reason = Reason(Code.EARLY_REFILL, Rule.R_DISP_3, "8 days of therapy remain.", "Ask again on 2026-06-16.")
    stored = (
        '{"code": "EARLY_REFILL", "rule": "R-DISP-3", "message": "8 days of therapy remain.", '
        '"next_step": "Ask again on 2026-06-16."}'
    )
    assert json.dumps(reason.as_dict()) == stored
    assert all(type(value) is str for value in reason.as_dict().values())
    assert (
        Reason(Code.EARLY_REFILL, "R-DISP-3", "8 days of therapy remain.", "Ask again on 2026-06-16.")  # type: ignore[arg-type]
        == reason
    )
