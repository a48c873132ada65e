"""How the standard fronts render CLINICAL_RULES.md's warnings (INTEROP.md, "Clinical
warnings"): each with its severity, code, rule ID, message and an evidence summary that
carries exactly what the Decision's ``warnings[].evidence`` carries to the same caller
(LOINC code, value, unit, collection time) and nothing more. A rendering, not a rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: Markdown's emphasis and code marks inside a message are shown as written (escaped).
_MARKDOWN = str.maketrans({"*": "\\*", "_": "\\_", "`": "\\`"})


def _plain(text: object) -> str:
    return " ".join(str(text).split())


def _evidence_items(warning: Mapping[str, Any]) -> list[str]:
    items = []
    for e in warning.get("evidence") or ():
        value = e.get("value")
        shown = f"{value:g}" if isinstance(value, int | float) else _plain(value)
        items.append(f"LOINC {e.get('loinc')} {shown} {_plain(e.get('unit'))} collected {e.get('collected_at')}")
    return items


def evidence(warning: Mapping[str, Any]) -> str:
    """``LOINC 777-3 25 10*3/uL collected 2026-06-10T08:00:00+00:00, ...`` or ``""``: the
    Decision body's evidence fields, in that order."""
    return ", ".join(_evidence_items(warning))


def line(warning: Mapping[str, Any]) -> str:
    """One warning as plain text: ``critical CODE (RULE): message Evidence: ...``."""
    text = f"{warning['severity']} {warning['code']} ({warning['rule']}): {_plain(warning['message'])}"
    shown = evidence(warning)
    if shown:
        text += f" Evidence: {shown}."
    return text.replace(";", ",").replace("|", "/")


def markdown(warning: Mapping[str, Any]) -> str:
    """One warning as a markdown list item (CDS Hooks card ``detail``)."""
    message = _plain(warning["message"]).translate(_MARKDOWN)
    text = f"- **{warning['severity']}** {warning['rule']} `{warning['code']}`: {message}"
    items = [f"`{item.replace('`', '')}`" for item in _evidence_items(warning)]  # UCUM units as written
    if items:
        text += f" Evidence: {', '.join(items)}."
    return text


def lines(warnings: Iterable[Mapping[str, Any]]) -> list[str]:
    return [line(w) for w in warnings]
