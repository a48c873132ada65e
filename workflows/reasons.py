"""Reasons a decision or a check gives: a stable code, the rule ID, a message."""

from __future__ import annotations

from dataclasses import dataclass

from .rules import Code, Rule


@dataclass(frozen=True)
class Reason:
    """One failing check: ``as_dict`` is the stored and replayed form.

    ``code`` and ``rule`` are converted to their enums on construction, so a
    code or rule ID outside the catalogues raises ``ValueError`` at once.
    """

    code: Code
    rule: Rule
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", Code(self.code))
        object.__setattr__(self, "rule", Rule(self.rule))

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code.value, "rule": self.rule.value, "message": self.message}
