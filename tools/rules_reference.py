"""The rules reference, ``docs/rules.md``, generated from the code.

``python -m tools.rules_reference > docs/rules.md`` (``make docs``) writes it;
``tests/unit/test_rules_reference.py`` fails while the committed file differs
from what the code generates, so it cannot drift. It lists:

- every ``Rule`` ID, the catalogue that defines it, the reason codes the code
  gives under it and the program parameters that hold its numbers;
- every ``Code``, the rules it is given under and where the code gives it:
  found by reading ``workflows/`` (every call whose first two arguments are
  ``Code.X, Rule.Y``, as ``Reason(...)`` is built), not from a hand-kept list;
- every program parameter with its value in each program version
  (``config/programs/*.toml``, loaded and validated as the service loads them),
  with the rule its file cites for it.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import workflows
from config.programs import PROGRAMS_DIR, load_program
from workflows.rules import Code, Rule

WORKFLOWS_DIR = Path(workflows.__file__).resolve().parent
#: The catalogues, relative to the project root (``docs/rules.md`` links to them).
CATALOGUES = ("REMS_RULES.md", "CLINICAL_RULES.md")
CATALOGUES_DIR = Path(__file__).resolve().parents[1] / "docs" / "catalogues"
#: The keys of a program file that name the version rather than hold a rule's number.
VERSION_KEYS = ("program", "version", "effective_from", "timezone")
RULE_ID = re.compile(r"R-[A-Z]+-\d+")


@dataclass(frozen=True, order=True)
class Site:
    """A place in ``workflows/`` that gives reason code ``code`` under rule ``rule``."""

    code: str
    rule: str
    where: str  # module.function


def _enum_member(node: ast.expr | None, enum: str) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == enum:
        return node.attr
    return None


def reason_sites(directory: Path = WORKFLOWS_DIR) -> list[Site]:
    """Every ``(Code.X, Rule.Y, ...)`` call in the modules of ``directory``, with its function."""
    sites: set[Site] = set()
    for path in sorted(directory.rglob("*.py")):
        module = ".".join(("workflows", *path.relative_to(directory).with_suffix("").parts))
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        sites.update(_sites_in(tree, module.removesuffix(".__init__")))
    return sorted(sites)


def _sites_in(tree: ast.AST, module: str) -> Iterable[Site]:
    def visit(node: ast.AST, function: str) -> Iterable[Site]:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            if isinstance(child, ast.Call):
                keywords = {k.arg: k.value for k in child.keywords if k.arg}
                code = _enum_member(child.args[0] if child.args else keywords.get("code"), "Code")
                rule = _enum_member(child.args[1] if len(child.args) > 1 else keywords.get("rule"), "Rule")
                if code and rule:
                    yield Site(Code[code].value, Rule[rule].value, f"{module}.{function}" if function else module)
            yield from visit(child, name)

    return visit(tree, "")


def _defined_in(rule: Rule) -> str:
    for name in CATALOGUES:
        path = CATALOGUES_DIR / name
        if path.exists() and re.search(
            rf"(\*\*{re.escape(rule.value)} \([CSP]\)\*\*|^\| {re.escape(rule.value)} \([CSP]\) \|)",
            path.read_text(encoding="utf-8"),
            re.MULTILINE,
        ):
            return f"[{name}](catalogues/{name})"
    return "—"


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _comments(text: str) -> dict[str, str]:
    """The trailing comment of each key (a table's comment applies to its keys)."""
    comments: dict[str, str] = {}
    table = ""
    for line in text.splitlines():
        header = re.match(r"^\[([A-Za-z0-9_.]+)\]\s*(?:#\s*(.*))?$", line.strip())
        if header:
            table = header.group(1)
            comments[table] = (header.group(2) or "").strip()
            continue
        entry = re.match(r"^([A-Za-z0-9_]+)\s*=[^#]*(?:#\s*(.*))?$", line.strip())
        if entry:
            key = f"{table}.{entry.group(1)}" if table else entry.group(1)
            comments[key] = (entry.group(2) or comments.get(table, "")).strip()
    return comments


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return str(value)


@dataclass(frozen=True)
class ProgramFiles:
    versions: list[str]
    values: dict[str, dict[str, str]]  # parameter -> version -> value
    notes: dict[str, str]  # parameter -> the file's comment (the newest file that has one)


def program_files(directory: Path = PROGRAMS_DIR) -> ProgramFiles:
    """Every version's parameters, read from the files the service loads (validated first)."""
    program = load_program(directory)  # a malformed file fails here, as at start-up
    by_version = {v.version: v for v in program.versions}
    values: dict[str, dict[str, str]] = defaultdict(dict)
    notes: dict[str, str] = {}
    versions: list[str] = []
    for path in sorted(directory.glob(f"{program.name}-*.toml")):
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
        version = str(data["version"])
        if version not in by_version:  # pragma: no cover - load_program read the same files
            raise ValueError(f"{path.name}: version {version!r} was not loaded")
        versions.append(version)
        comments = _comments(text)
        for key, value in _flatten(data).items():
            values[key][version] = _value(value)
            if comments.get(key):
                notes[key] = comments[key]
    versions.sort(key=lambda v: by_version[v].effective_from)
    return ProgramFiles(versions, dict(values), notes)


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def render() -> str:
    """The text of ``docs/rules.md``."""
    sites = reason_sites()
    codes_by_rule: dict[str, list[str]] = defaultdict(list)
    rules_by_code: dict[str, list[str]] = defaultdict(list)
    where_by_code: dict[str, list[str]] = defaultdict(list)
    for site in sites:
        for mapping, key, value in (
            (codes_by_rule, site.rule, site.code),
            (rules_by_code, site.code, site.rule),
            (where_by_code, site.code, site.where),
        ):
            if value not in mapping[key]:
                mapping[key].append(value)
    programs = program_files()
    params_by_rule: dict[str, list[str]] = defaultdict(list)
    for key, note in programs.notes.items():
        if key in VERSION_KEYS or key not in programs.values:
            continue
        for rule_id in RULE_ID.findall(note):
            params_by_rule[rule_id].append(key)

    lines = [
        "# Rules reference",
        "",
        "<!-- Generated from the code by `python -m tools.rules_reference` (`make docs`); do not edit.",
        "     tests/unit/test_rules_reference.py fails while this file differs from what the code generates. -->",
        "",
        "What this version of the service enforces, read from its code: the rule IDs and reason codes of",
        "`workflows/rules.py`, the places in `workflows/` that give each reason, and the program parameters",
        "of `config/programs/`. The rules themselves are stated in the catalogues",
        f"([{CATALOGUES[0]}](catalogues/{CATALOGUES[0]}), [{CATALOGUES[1]}](catalogues/{CATALOGUES[1]})).",
        "",
        "## Rules",
        "",
        "Reason codes: the codes the decisions give under the rule. Parameters: the program parameters",
        "the program file cites the rule for. A rule with neither is enforced by the state machines,",
        "the database or the audit log, or is catalogued ahead of its code.",
        "",
        _row(["Rule", "Defined in", "Reason codes", "Parameters"]),
        _row(["---"] * 4),
    ]
    for rule in Rule:
        lines.append(
            _row(
                [
                    f"`{rule.value}`",
                    _defined_in(rule),
                    ", ".join(f"`{c}`" for c in codes_by_rule.get(rule.value, [])) or "—",
                    ", ".join(f"`{p}`" for p in params_by_rule.get(rule.value, [])) or "—",
                ]
            )
        )
    lines += [
        "",
        "## Reason codes",
        "",
        "Every code of `workflows.rules.Code`, the rules it is given under and the functions that give it.",
        "",
        _row(["Code", "Rules", "Given by"]),
        _row(["---"] * 3),
    ]
    for code in Code:
        where = where_by_code.get(code.value)
        lines.append(
            _row(
                [
                    f"`{code.value}`",
                    ", ".join(f"`{r}`" for r in rules_by_code.get(code.value, [])) or "—",
                    "<br>".join(f"`{w}`" for w in where) if where else "not given by this version (catalogued ahead)",
                ]
            )
        )
    versions = programs.versions
    lines += [
        "",
        "## Program parameters",
        "",
        "Every number of the rules, per program version (`config/programs/<program>-<version>.toml`;",
        "a version is in force from midnight of its `effective_from` in its `timezone`).",
        "",
        _row(["Parameter", *versions, "Rule (from the program file)"]),
        _row(["---"] * (len(versions) + 2)),
    ]
    ordered = [k for k in VERSION_KEYS if k in programs.values] + [k for k in programs.values if k not in VERSION_KEYS]
    for key in ordered:
        lines.append(
            _row(
                [
                    f"`{key}`",
                    *(programs.values[key].get(v, "—") for v in versions),
                    programs.notes.get(key, "") or "—",
                ]
            )
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Print the reference; ``--check FILE``: exit 1 (with a hint) unless FILE equals it."""
    text = render()
    if argv[:1] == ["--check"] and len(argv) == 2:
        current = Path(argv[1]).read_text(encoding="utf-8") if Path(argv[1]).exists() else ""
        if current != text:
            print(f"{argv[1]} differs from the code: run `make docs`", file=sys.stderr)
            return 1
        return 0
    if argv:
        print("usage: python -m tools.rules_reference [--check FILE]", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
