"""What the grader reports: one :class:`CheckResult` per check, gathered in a
:class:`GradeReport` that prints as a table (plus details of each failure) or
serialises to JSON for a class roster.

These are not the oracle kit's :class:`~hessinv_ref.testing.report.Check`
and :class:`~hessinv_ref.testing.report.Report`, on purpose: a grading check
is a verdict over many cases with no single error and tolerance; its failure
is told in words (``kind``, ``case``, ``expected``, ``actual``, ``hint``);
``passed`` is a stored field of the JSON roster (:meth:`GradeReport.to_dict`);
and a grade without checks (a file that could not be graded) has not passed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["CheckResult", "GradeReport"]

_FAIL_WORD = {
    "wrong": "FAIL",
    "not_implemented": "FAIL (not implemented)",
    "missing": "FAIL (not defined)",
    "error": "FAIL (raised an error)",
    "timeout": "FAIL (time limit)",
    "forbidden": "FAIL (calls the reference)",
    "grader_error": "ERROR (grader)",
    "not_run": "FAIL (not run)",
}


@dataclass
class CheckResult:
    """The outcome of one check (see :class:`~hessinv_ref.grading.harness.CheckFailure`
    for the meaning of the fields of a failure)."""

    id: str
    title: str
    passed: bool
    n_cases: int = 0
    kind: str | None = None
    message: str | None = None
    case: str | None = None
    expected: str | None = None
    actual: str | None = None
    worst: str | None = None
    hint: str | None = None

    @property
    def word(self):
        return "pass" if self.passed else _FAIL_WORD.get(self.kind, "FAIL")


@dataclass
class GradeReport:
    """The grade of one file.

    Attributes
    ----------
    path : str
    exercise : int or None
    title : str
    checks : list of CheckResult
    notes : list of str
        Things worth knowing that are not a check (a cell that raised, no
        hypothesis, a time limit hit).
    error : str or None
        Set when the file could not be graded at all (not found, unknown
        exercise); then ``checks`` is empty.
    output : str
        The tail of what the student's code printed.
    """

    path: str
    exercise: int | None
    title: str = ""
    checks: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    error: str | None = None
    output: str = ""

    @property
    def n_passed(self):
        return sum(c.passed for c in self.checks)

    @property
    def passed(self):
        """True when the file was graded and every check passed."""
        return self.error is None and bool(self.checks) and all(c.passed for c in self.checks)

    def check(self, check_id):
        """The :class:`CheckResult` with id ``check_id``."""
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(f"check_id: no check {check_id!r} in exercise {self.exercise}; "
                       f"have {[c.id for c in self.checks]}")

    def to_dict(self):
        d = asdict(self)
        d.update(passed=self.passed, n_passed=self.n_passed, n_checks=len(self.checks))
        return d

    def summary(self):
        """One line: the file and the score."""
        if self.error is not None:
            return f"{self.path}: not graded: {self.error}"
        status = "all checks passed" if self.passed else "some checks failed"
        return f"{self.path}: {self.n_passed}/{len(self.checks)} ({status})"

    def __repr__(self):
        return f"<GradeReport exercise {self.exercise}: {self.n_passed}/{len(self.checks)} checks passed>"

    def render(self):
        """The full report as text: a table of checks, then each failure in detail."""
        if self.error is not None:
            return f"Could not grade {self.path}:\n  {self.error}\n"
        lines = [f"Exercise {self.exercise}: {self.title}", f"file: {self.path}", ""]
        width = max([len(c.title) for c in self.checks] + [5])
        lines.append(f"  {'#':>2}  {'check':<{width}}  result")
        lines.append(f"  {'--':>2}  {'-' * width}  {'-' * 6}")
        for i, c in enumerate(self.checks, 1):
            lines.append(f"  {i:>2}  {c.title:<{width}}  {c.word}")
        lines.append("")
        for note in self.notes:
            lines.append(f"note: {note}")
        if self.notes:
            lines.append("")
        for i, c in enumerate(self.checks, 1):
            if c.passed:
                continue
            lines.append(f"--- {i}. {c.title} " + "-" * max(3, 60 - len(c.title)))
            lines.append(f"  {c.message}")
            if c.kind == "not_implemented":  # the case and values would only be noise
                lines.append("")
                continue
            for label, value in (("case", c.case), ("expected", c.expected), ("actual", c.actual),
                                 ("worst", c.worst), ("hint", c.hint)):
                if value:
                    pad = "\n" + " " * 12
                    lines.append(f"  {label + ':':<10}{value.replace(chr(10), pad)}")
            lines.append("")
        if self.passed:
            lines.append(f"All {len(self.checks)} checks passed.")
        else:
            lines.append(f"{self.n_passed} of {len(self.checks)} checks passed.")
        return "\n".join(lines) + "\n"
