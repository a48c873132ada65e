"""Reasons a decision or a check gives: a stable code, the rule ID, a message,
and the next step a person can take."""

from __future__ import annotations

from dataclasses import dataclass

from .rules import Code, Rule


@dataclass(frozen=True)
class Reason:
    """One failing check: ``as_dict`` is the stored form.

    ``message`` says what failed; ``next_step`` says what a person can do
    about it, computed from the rule and the facts where they give a date, a
    number or the party who must act (REMS_RULES.md, "Reason codes"), and
    names the request field to fix where there is one.

    ``code`` and ``rule`` are converted to their enums on construction, so a
    code or rule ID outside the catalogues raises ``ValueError`` at once; an
    empty ``message`` or ``next_step`` raises too. A replay compares only the
    codes and rules (``workflows.replay.summary``), so decisions recorded
    before ``next_step`` existed still replay.
    """

    code: Code
    rule: Rule
    message: str
    next_step: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", Code(self.code))
        object.__setattr__(self, "rule", Rule(self.rule))
        if not self.message.strip() or not self.next_step.strip():
            raise ValueError(f"a {self.code.value} reason needs a message and a next step")

    def as_dict(self) -> dict[str, str]:
        return {
            "code": self.code.value,
            "rule": self.rule.value,
            "message": self.message,
            "next_step": self.next_step,
        }
