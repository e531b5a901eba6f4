"""OperationOutcome: the shape of every FHIR error and warning we answer."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    severity: str  # fatal | error | warning | information
    code: str  # an IssueType code: invalid, not-found, processing, ...
    diagnostics: str
    expression: str | None = None


@dataclass
class FHIRError(Exception):
    """Raised anywhere below a FHIR route; answered as an OperationOutcome."""

    status: int
    code: str
    diagnostics: str
    expression: str | None = None
    headers: dict = field(default_factory=dict)
    extra: list = field(default_factory=list)  # further Problems

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.diagnostics}"

    def problems(self) -> list[Problem]:
        return [Problem("error", self.code, self.diagnostics, self.expression), *self.extra]


def operation_outcome(problems: list[Problem]) -> dict:
    issues = []
    for p in problems:
        issue = {"severity": p.severity, "code": p.code, "diagnostics": p.diagnostics}
        if p.expression:
            issue["expression"] = [p.expression]
        issues.append(issue)
    return {"resourceType": "OperationOutcome", "issue": issues}


def information(message: str) -> dict:
    return operation_outcome([Problem("information", "informational", message)])
