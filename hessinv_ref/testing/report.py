r"""One report type for every check-and-compare table: a :class:`Check` per
quantity (its error against its tolerance, and a status), gathered in a
:class:`Report` that judges, tabulates and raises.

Every table that compares a quantity with the oracle is made of these:

* :class:`~hessinv_ref.testing.asserts.OracleReport` of
  :class:`~hessinv_ref.testing.asserts.Comparison` rows: a candidate's
  gradient, ``Hv`` or inverse against the oracle's, per problem;
* :class:`~hessinv_ref.testing.check.LayerCheckReport` of
  :class:`~hessinv_ref.testing.check.CheckResult` rows: a layer's
  derivatives against central differences;
* :class:`~hessinv_ref.golden.VerifyReport` of
  :class:`~hessinv_ref.golden.VerifyRow` rows: a golden file's stored
  answers against the recomputed ones;
* the table of ``hessinv-ref gpu-check`` (:mod:`hessinv_ref.gpu_check`):
  every route on a backend against that backend's dense oracle and against
  NumPy.

Each row class is a :class:`Check` with fields of its own (the problem and
its recipe, the worst entry, the diagnosis), so ``.quantity``, ``.status``,
``.error``, ``.tolerance`` and ``.passed`` mean the same on every row, and
each report class is a :class:`Report` (``.checks``, ``.passed``,
``.failures``, ``report[quantity]``, :meth:`Report.table`,
:meth:`Report.raise_if_failed`) with its own summary and columns.

The statuses
------------
==============  ==================================================================
status          meaning
==============  ==================================================================
``"pass"``      within tolerance (or, for a check without numbers, right)
``"FAIL"``      out of tolerance, wrong, or broken; it fails the report
``"skip"``      not compared; :attr:`Check.detail` says why
``"info"``      compared and out of tolerance, but not enforced (a baseline
                that need not converge, such as ``cg`` on an indefinite matrix)
``"refused"``   the computation refused by its documented rule (a pivot below
                its ``rcond`` threshold): reported, not failed
==============  ==================================================================

A :class:`Check` built with an error and a tolerance but no status is
judged by :func:`judge`: ``"pass"`` when ``error <= tolerance``, else
``"FAIL"`` (a NaN error fails).  A report fails when any of its checks has
the status ``"FAIL"``.

What is not a :class:`Check`
----------------------------
The classroom grader's rows (:class:`hessinv_ref.grading.report.CheckResult`
in :class:`~hessinv_ref.grading.report.GradeReport`) are kept apart.  A
grading check is a verdict over many cases, computed in a sandboxed worker:
it has no single error and tolerance, its failure is told in words (the
kind of failure, the case, the expected and actual values as text, a hint),
its ``passed`` is a stored field of the JSON roster that
``hessinv-ref grade --json`` writes, and a grade without checks (a file
that could not be graded) is not a pass.  Making it a :class:`Check` would
give every grading row four fields that are always empty and change that
JSON, with nothing shared but the word "passed".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

__all__ = ["STATUSES", "judge", "Check", "Column", "number", "Report"]

STATUSES = ("pass", "FAIL", "skip", "info", "refused")
"""The statuses a :class:`Check` may have (see the module notes)."""


def judge(error, tolerance):
    """``"pass"`` when ``error <= tolerance``, else ``"FAIL"`` (so a NaN error fails).

    Parameters
    ----------
    error, tolerance : float

    Returns
    -------
    str
    """
    return "pass" if error <= tolerance else "FAIL"


@dataclass
class Check:
    """One compared quantity: its error against its tolerance, and the verdict.

    Attributes
    ----------
    quantity : str
        What was checked, e.g. ``"g"``, ``"Hxz"``, ``"riccati"``.
    status : str
        One of :data:`STATUSES`.  When not given, :func:`judge` sets it from
        ``error`` and ``tolerance``.
    error : float or None
        The error, in the unit of ``measure``; None when not computed.
    tolerance : float or None
        The allowed error, in the same unit.
    measure : str
        How ``error`` was measured, e.g. ``"||d|| / ||x||"``.
    detail : str
        What else the row says: the conditioning, or why it failed or was
        skipped when that is not a tolerance miss.
    """

    quantity: str
    status: str | None = None
    error: float | None = None
    tolerance: float | None = None
    measure: str = ""
    detail: str = ""

    def __post_init__(self):
        if self.status is None:
            if self.error is None or self.tolerance is None:
                raise ValueError(
                    f"status: expected one of {STATUSES}, or an error and a tolerance to judge by; "
                    f"got status None, error {self.error!r}, tolerance {self.tolerance!r}"
                )
            self.status = judge(self.error, self.tolerance)
        elif self.status not in STATUSES:
            raise ValueError(f"status: expected one of {STATUSES}, got {self.status!r}")

    @property
    def passed(self):
        """True for the status ``"pass"``."""
        return self.status == "pass"

    @property
    def failed(self):
        """True for the status ``"FAIL"`` (a skipped, refused or info row has not failed)."""
        return self.status == "FAIL"


def number(attribute, spec=".2e", missing=""):
    """A :class:`Column` cell: ``getattr(check, attribute)`` formatted with
    ``spec``, or ``missing`` when it is None."""

    def cell(check):
        value = getattr(check, attribute)
        return missing if value is None else format(value, spec)

    return cell


@dataclass(frozen=True)
class Column:
    """One column of :meth:`Report.table`.

    Attributes
    ----------
    header : str
    cell : callable
        ``cell(check) -> str``, the text of the column in the row of ``check``.
    width : int or None
        Padded to this width (aligned by ``align``); None for the last
        column, which is not padded.
    align : {"<", ">"}
    gap : int
        Spaces before the column.
    """

    header: str
    cell: Callable
    width: int | None = None
    align: str = "<"
    gap: int = 0

    def format(self, text):
        """``text`` as it stands in this column."""
        return " " * self.gap + (text if self.width is None else f"{text:{self.align}{self.width}}")


def _note(check):
    return check.measure + (f"; {check.detail}" if check.detail else "")


@dataclass
class Report:
    """A list of :class:`Check` objects, judged and tabulated.

    Subclasses add their own fields (what was checked: a file, a layer, a
    helper's name), a :meth:`summary`, and their :attr:`COLUMNS`.

    Attributes
    ----------
    checks : list of Check
        In the order they were made (a keyword-only argument).
    """

    checks: list = field(default_factory=list, kw_only=True)

    COLUMNS = (
        Column("quantity", lambda c: c.quantity, 24),
        Column("status", lambda c: c.status, 7),
        Column("error", number("error"), 11, ">"),
        Column("tolerance", number("tolerance"), 11, ">"),
        Column("measure / note", _note, gap=2),
    )
    """The columns of :meth:`table`: quantity, status, error, tolerance,
    then the measure and the note.  A subclass replaces them."""

    @property
    def failures(self):
        """The checks with the status ``"FAIL"``."""
        return [c for c in self.checks if c.failed]

    @property
    def n_passed(self):
        """How many checks passed."""
        return sum(c.passed for c in self.checks)

    @property
    def passed(self):
        """True when no check failed (skipped, refused and info rows do not count)."""
        return not self.failures

    def __getitem__(self, quantity):
        """The first check of this ``quantity``; ``KeyError`` naming the ones there are."""
        for c in self.checks:
            if c.quantity == quantity:
                return c
        raise KeyError(f"quantity: expected one of {[c.quantity for c in self.checks]}, got {quantity!r}")

    def header(self):
        """The header line of :meth:`table`."""
        return "".join(col.format(col.header) for col in self.COLUMNS)

    def line(self, check):
        """The line of ``check`` in :meth:`table`."""
        return "".join(col.format(col.cell(check)) for col in self.COLUMNS)

    def lines_after(self, check):
        """Lines printed under the line of ``check`` (none here)."""
        return []

    def table(self):
        """The header, a rule, and one line per check (with its :meth:`lines_after`)."""
        head = self.header()
        lines = [head, "-" * len(head)]
        for c in self.checks:
            lines.append(self.line(c))
            lines += self.lines_after(c)
        return "\n".join(lines)

    def summary(self):
        """One line: how many checks passed."""
        return f"{self.n_passed} of {len(self.checks)} checks passed"

    def message(self):
        """The failure message of :meth:`raise_if_failed`: the summary and the table."""
        return self.summary() + "\n" + self.table()

    def raise_if_failed(self):
        """Raise ``AssertionError`` with :meth:`message` if the report has not passed;
        else return the report."""
        if not self.passed:
            raise AssertionError(self.message())
        return self
