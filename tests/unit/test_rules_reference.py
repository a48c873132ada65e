"""docs/rules.md is the rules reference generated from the code (tools/rules_reference.py):
the committed file must equal what the code generates now, so it cannot drift."""

from __future__ import annotations

import ast
from pathlib import Path

from tools.rules_reference import Site, _sites_in, program_files, reason_sites, render
from workflows.rules import Code, Rule

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "rules.md"


def test_committed_reference_equals_the_generated_one():
    assert REFERENCE.read_text(encoding="utf-8") == render(), (
        "docs/rules.md differs from what the code generates: run `make docs` and commit it"
    )


def test_every_rule_and_code_is_listed():
    text = render()
    for rule in Rule:
        assert f"| `{rule.value}` |" in text
    for code in Code:
        assert f"| `{code.value}` |" in text


def test_reason_sites_are_read_from_the_calls_that_build_reasons():
    tree = ast.parse(
        "def check(x):\n"
        "    if x:\n"
        "        return Reason(Code.EARLY_REFILL, Rule.R_DISP_3, 'm', 'n')\n"
        "    return helper(code=Code.AUTHORIZATION_EXPIRED, rule=Rule.R_AUTH_3)\n"
        "other = (Code.EARLY_REFILL,)\n"
    )
    assert sorted(_sites_in(tree, "workflows.example")) == [
        Site("AUTHORIZATION_EXPIRED", "R-AUTH-3", "workflows.example.check"),
        Site("EARLY_REFILL", "R-DISP-3", "workflows.example.check"),
    ]
    # The real decisions: every code they give is found, under a catalogued rule.
    sites = reason_sites()
    assert {s.code for s in sites} >= {Code.EARLY_REFILL.value, Code.PREGNANCY_TEST_POSITIVE.value}
    assert all(Rule(s.rule) and s.where.startswith("workflows.") for s in sites)


def test_program_parameters_come_from_every_program_file():
    files = program_files()
    assert files.versions, "no program version found"
    newest = files.versions[-1]
    assert files.values["max_days_supply"][newest].isdigit()
    assert "R-AUTH-2" in files.notes["max_days_supply"]
    # A table's comment names the rule of its keys.
    assert "R-PREG-3" in files.notes["monitoring.regular_interval_days"]
