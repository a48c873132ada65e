"""Showing a decision the portal asked for, including one replayed by its idempotency key.

Every decision form carries a fresh ``request_key`` (a hidden field, new on each
render) that the view passes to the service as the ``Idempotency-Key``: a form
sent twice (a double click, the browser's "resend" after a refresh) gets the
first decision back instead of a second one (which would be denied, the
authorization being used by the first).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from rems_service.services.decisions import DecisionAnswer

#: The Decision's time fields (API.md), parsed back for display.
_TIMES = ("evaluated_at", "expires_at", "confirmation_expires_at")
_FIELDS = (
    "authorization_number",
    "risk_category",
    "rems_patient_id",
    "days_supply",
    "expires_at",
    "confirmation_number",
    "confirmation_expires_at",
)


def new_request_key() -> str:
    return uuid.uuid4().hex


def request_key(value: str | None) -> str | None:
    """The form's key if it looks like one we issued; None (decide without a key) otherwise."""
    if value and len(value) == 32 and all(c in "0123456789abcdef" for c in value):
        return value
    return None


def shown(answer: DecisionAnswer) -> Any:
    """What the result region shows: the decision made now, or the one first answered to this key."""
    if answer.result is not None:
        return answer.result
    body: dict[str, Any] = json.loads(answer.body)
    values: dict[str, Any] = dict.fromkeys(_FIELDS)
    values.update(body)
    for name in _TIMES:
        if values.get(name):
            values[name] = datetime.fromisoformat(values[name])
    values["approved"] = body.get("decision") == "approved"
    values["reasons"] = tuple(body.get("reasons", ()))
    values["warnings"] = tuple(body.get("warnings", ()))
    return SimpleNamespace(**values)


#: R-ACK-1's reason code: a critical warning the request did not acknowledge.
UNACKNOWLEDGED = "CLINICAL_ALERT_UNACKNOWLEDGED"


def rules_to_acknowledge(result: Any) -> list[str]:
    """The rules of a denied decision's critical warnings: what the next request must acknowledge
    to go ahead (R-ACK-1). Nothing for an approval or a decision without a critical warning."""
    if result is None or result.approved:
        return []
    return list(dict.fromkeys(w["rule"] for w in result.warnings if w.get("severity") == "critical"))


_ACK_RULE = re.compile(r'"rule":\s*"([A-Z0-9-]+)"')
_FIELD_NAME = re.compile(r"`([A-Za-z_][A-Za-z0-9_.]*)(?::\s*([^`]+))?`")


def labels_of(form: Iterable[Any]) -> dict[str, str]:
    """A form's field names and their labels: ``{"rems_patient_id": "REMS patient ID", ...}``."""
    return {field.short_name: str(field.label.text) for field in form if getattr(field, "label", None)}


def with_labels(text: str | None, labels: Mapping[str, str] | None) -> str:
    """A rule's next step as a person at this form reads it: a request field the rule names
    (```days_supply```, ```counseling.checklist_completed: true```) becomes its label on the form
    (“Days' supply”, “Counseling checklist completed” checked); a name the form does not have
    keeps its backticks."""
    if not text or not labels:
        return text or ""

    def label(match: re.Match[str]) -> str:
        name, value = match.group(1).rsplit(".", 1)[-1], match.group(2)
        if name == "acknowledgements" and value:  # R-ACK-1: the form's acknowledgement fields
            rules = _ACK_RULE.findall(value)
            if rules:
                fields = " and ".join(f"“Reason for going ahead despite {rule}”" for rule in rules)
                return f"{fields} (under “Acknowledge critical warnings”)"
        if name not in labels:
            return match.group(0)
        if value is None:
            return f"“{labels[name]}”"
        if value.strip() in ("true", "false"):  # a checkbox
            return f"“{labels[name]}” {'checked' if value.strip() == 'true' else 'unchecked'}"
        return f"“{labels[name]}” {value.strip()}"

    return _FIELD_NAME.sub(label, text)
