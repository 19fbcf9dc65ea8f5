"""The machinery every exercise's checks share.

* :class:`CheckFailure`: what a failed check reports (the case, the expected
  and actual values, the worst entry and a hint).
* :func:`compare`: the one comparison every check uses.  On a mismatch it
  *diagnoses* the student's answer by testing it against the wrong variants
  the check supplies (each paired with its hint), then against generic
  mistakes (all zeros, a sign, a transpose, a constant factor).
* :class:`Student`: the namespace the student's cells defined, and the one
  way the grader calls into it (:meth:`Student.call`): with a time limit, with
  the student's exception turned into a readable failure that names the line
  of their file, and with a :class:`Guard` that notices calls to the
  reference functions the exercise is graded against.
* :class:`Cases`: the inputs of a check: a few seeded cases, then cases
  drawn by hypothesis (or by a seeded generator when hypothesis is missing).
"""

from __future__ import annotations

import contextlib
import functools
import linecache
import signal
import sys
import traceback
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = [
    "CheckFailure",
    "StudentTimeout",
    "WALL_FACTOR",
    "WALL_MIN",
    "wall_backstop",
    "Guard",
    "Student",
    "Cases",
    "Check",
    "Variant",
    "compare",
    "compare_pieces",
    "block_locator",
    "NO_MATCH",
    "methods",
    "expect",
    "as_array",
    "format_array",
]

KINDS = ("wrong", "not_implemented", "missing", "error", "timeout", "forbidden", "grader_error", "not_run")
"""Kinds of failure, from the student's point of view."""


class CheckFailure(Exception):
    """A check failed; every field is shown to the student.

    Parameters
    ----------
    message : str
        One line: what is wrong.
    kind : str
        One of :data:`KINDS`.
    case : str, optional
        The input that exposed it (filled in by the check runner when absent).
    expected, actual : str, optional
        Formatted values.
    worst : str, optional
        The entry with the largest error, formatted.
    hint : str, optional
        The diagnosis: which common mistake the answer matches.
    """

    def __init__(self, message, *, kind="wrong", case=None, expected=None, actual=None, worst=None, hint=None):
        super().__init__(message)
        if kind not in KINDS:  # pragma: no cover - a bug in a check
            raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
        self.message, self.kind, self.case = message, kind, case
        self.expected, self.actual, self.worst, self.hint = expected, actual, worst, hint

    def to_dict(self):
        return {
            "message": self.message,
            "kind": self.kind,
            "case": self.case,
            "expected": self.expected,
            "actual": self.actual,
            "worst": self.worst,
            "hint": self.hint,
        }


WALL_FACTOR = 10.0
"""How much longer than its CPU-time limit a call (or a file) may take by the
wall clock (see :func:`wall_backstop`).

Every limit of the grader counts CPU time, which a busy machine does not
inflate: a correct answer graded beside other work passes as it would on an
idle machine, and an infinite loop, which computes, is stopped at the limit.
The wall clock is only a backstop for code that waits instead of computing
(``time.sleep``, a lock).  Where the system cannot count CPU time (no
``signal.setitimer``), the backstop is the only limit.
"""

WALL_MIN = 30.0
"""The shortest wall-clock backstop, in seconds.  Ten times a short limit is
not enough on a machine loaded many times over, where a call that needs
little CPU can wait far longer for a core or for the disk.  (Seen once
while writing this: ``test_a_correct_answer_passes_on_a_busy_machine`` in
``tests/grading/test_grade_entry_points.py``, run with a 1 s backstop for a
0.1 s CPU limit, failed exercise 3's answer key "by the clock", under 0.1 s
of CPU, at a load average of 7.5 on 2 cores; that call was importing
``scipy.special``, which the worker now imports before any student call.)"""


def wall_backstop(limit):
    """Seconds by the clock allowed for a CPU-time ``limit``: ``max(WALL_FACTOR * limit, WALL_MIN)``."""
    return max(WALL_FACTOR * float(limit), WALL_MIN)


class StudentTimeout(BaseException):
    """Raised by the timers inside a student call that ran too long.

    A ``BaseException``, so that a student's ``except Exception`` cannot
    swallow it and loop on.  ``clock`` is ``"cpu"`` (the CPU-time limit) or
    ``"wall"`` (the wall-clock backstop).
    """

    def __init__(self, clock="cpu"):
        super().__init__(clock)
        self.clock = clock


# -- formatting --------------------------------------------------------------------


def format_array(a, max_size=30, prefix=""):
    """A compact printout: whole for small arrays, shape and edges for large.

    ``prefix`` is text that will precede the first line (e.g. ``"W = "``):
    continuation lines are indented to align under it.
    """
    if a is None:
        return prefix + "None"
    if not isinstance(a, np.ndarray):
        return prefix + repr(a)
    text = np.array2string(
        a, precision=6, threshold=max_size, edgeitems=3, max_line_width=88, suppress_small=False, prefix=prefix
    )
    return prefix + text if a.size <= max_size else f"{prefix}array of shape {a.shape}:\n{text}"


def _describe_type(obj):
    if isinstance(obj, np.ndarray):
        return f"an array of shape {obj.shape} and dtype {obj.dtype}"
    return f"a {type(obj).__name__}"


def as_array(what, value):
    """Convert a student's value to a float array, or fail saying why not.

    Accepts arrays, nested lists, numbers and ``scipy.sparse`` matrices.
    """
    if value is None:
        raise CheckFailure(
            f"{what} is None",
            hint="a function without a `return` statement returns None: did you forget to return the result?",
        )
    if hasattr(value, "toarray") and callable(value.toarray):  # scipy.sparse
        value = value.toarray()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise CheckFailure(f"{what} is {_describe_type(value)}, not an array of numbers ({err})") from None
    return arr


# -- comparisons ---------------------------------------------------------------------


@dataclass
class Variant:
    """A known wrong answer and the hint to give when the student's matches it.

    ``value`` may be a callable returning the array, so that the variant is
    computed only when a diagnosis is needed.
    """

    hint: str
    value: Any

    def array(self):
        v = self.value() if callable(self.value) else self.value
        return None if v is None else np.asarray(v, dtype=np.float64)

    def try_array(self):
        """:meth:`array`, or ``None`` when the variant cannot be computed for this case.

        A variant is the reference with one ingredient changed, and the
        change can make it fail where the reference does not (no damping
        leaves a pivot singular, a transposed block no longer fits): then
        the answer simply is not this mistake.  The diagnosis must never
        turn a wrong answer into an error of the grader.
        """
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return self.array()
        except Exception:  # noqa: BLE001 - any failure of a variant means "not this mistake"
            return None


def _tolerance(expected, rtol, atol):
    scale = float(np.max(np.abs(expected), initial=0.0))
    return atol + rtol * scale


def _close(actual, target, tol):
    return actual.shape == target.shape and bool(np.all(np.abs(actual - target) <= tol))


NO_MATCH = ("none of the common mistakes the grader knows for this check matches your answer: the worst entry "
            "shows where it is furthest off; rebuild this case in your notebook and check each term of the "
            "formula there")
"""The hint of last resort: every wrong answer gets a hint, even one that matches no known mistake."""


def _worst(actual, expected, tol, locate=None):
    err = np.abs(actual - expected)
    # NaN counts as the worst error (argmax alone would skip it, since NaN compares false).
    flat = np.where(np.isnan(err), np.inf, err).ravel()
    idx = np.unravel_index(int(np.argmax(flat)), err.shape) if err.size else ()
    index = [int(i) for i in idx]
    where = "value" if not index else f"entry {index[0] if len(index) == 1 else index}"
    if locate is not None and index:
        where += f" ({locate(tuple(index))})"
    return (
        f"{where}: expected {expected[idx]:.10g}, got {actual[idx]:.10g} "
        f"(max abs error {float(err[idx]):.3g} > tolerance {tol:.3g})"
    )


def block_locator(sizes, name="block", col_sizes=None):
    """``locate`` for :func:`compare`: where an entry of a vector (or matrix)
    made of blocks is, in the student's terms.

    Entry ``i`` of a vector split into pieces of ``sizes`` reads
    ``"<name> k, index j"``; entry ``[i, j]`` of a matrix whose block rows
    have ``sizes`` and block columns ``col_sizes`` reads ``"<name> (k, m),
    index [r, s]"``.  Blocks are numbered from 1, as the exercises number
    layers; indices inside a block from 0, as NumPy indexes arrays.
    """
    def find(i, bounds):
        k = int(np.searchsorted(bounds, i, side="right"))
        return k, i - (int(bounds[k - 1]) if k else 0)

    rows = np.cumsum(sizes)
    cols = None if col_sizes is None else np.cumsum(col_sizes)

    def locate(index):
        k, r = find(index[0], rows)
        if cols is None or len(index) < 2:
            return f"{name} {k + 1}, index {r}"
        m, c = find(index[1], cols)
        return f"{name} ({k + 1}, {m + 1}), index [{r}, {c}]"

    return locate


def _generic_hint(actual, expected, tol):
    """Diagnoses that need no knowledge of the exercise."""
    if not np.all(np.isfinite(actual)):
        return "your result contains NaN or inf: look for an overflow (exp of a large number) or a 0/0"
    if np.all(actual == 0) and np.any(expected != 0):
        return "your result is all zeros: a term that should be there is missing, or the array is never filled in"
    if _close(actual, -expected, tol):
        return "your result is the negative of the expected one: check the sign of each term"
    if actual.ndim == 2 and actual.shape[0] == actual.shape[1] and _close(actual, expected.T, tol):
        return "your result matches the transpose of the expected one: check the order of rows and columns"
    e2 = float(np.sum(expected * expected))
    if e2 > 0:
        c = float(np.sum(actual * expected)) / e2
        if abs(c - 1) > 1e-6 and _close(actual, c * expected, 10 * tol):
            return f"your result is {c:.6g} times the expected one: a constant factor is off"
    return None


def compare(what, actual, expected, *, rtol=1e-8, atol=1e-12, variants=(), hint=None, locate=None):
    """Fail unless ``actual`` matches ``expected``; diagnose the mismatch.

    Parameters
    ----------
    what : str
        Name of the value, e.g. ``"b_in"`` (used in the message).
    actual : array_like
        The student's value (converted with :func:`as_array`).
    expected : array_like
        The reference value.
    rtol, atol : float
        Pass when ``max|actual - expected| <= atol + rtol * max|expected|``.
    variants : sequence of Variant
        Known wrong answers, tried in order; the first that matches gives the
        hint.  A variant that raises is skipped (see :meth:`Variant.try_array`).
    hint : str, optional
        Fallback hint when nothing matches (then :data:`NO_MATCH`).
    locate : callable, optional
        ``locate(index) -> str``: where entry ``index`` of ``expected`` is in
        the student's terms (e.g. :func:`block_locator`), shown with the worst
        entry.

    Raises
    ------
    CheckFailure
    """
    expected = np.asarray(expected, dtype=np.float64)
    actual = as_array(what, actual)
    tol = _tolerance(expected, rtol, atol)
    if actual.shape == expected.shape and _close(actual, expected, tol):
        return
    found = None
    for variant in variants:
        target = variant.try_array()
        if target is not None and _close(actual, target, max(tol, _tolerance(target, rtol, atol))):
            found = variant.hint
            break
    if actual.shape != expected.shape:
        if found is None and actual.shape == expected.T.shape and actual.ndim == 2 and _close(actual.T, expected, tol):
            found = (
                f"{what} matches the transpose of the expected value: it should have shape "
                f"{expected.shape}, yours has {actual.shape}"
            )
        elif found is None and actual.size == expected.size and _close(actual.reshape(expected.shape), expected, tol):
            found = (
                f"the values are right but laid out as {actual.shape}; reshape to {expected.shape} "
                "(activations are flat and sample-major, parameters are W row-major then the bias)"
            )
        raise CheckFailure(
            f"{what} has shape {actual.shape}, expected {expected.shape}",
            expected=format_array(expected),
            actual=format_array(actual),
            hint=found or hint or f"{what} must have shape {expected.shape}: check the sizes the exercise states "
            "for each array, and which axis is which",
        )
    found = found or _generic_hint(actual, expected, tol) or hint or NO_MATCH
    raise CheckFailure(
        f"{what} is wrong",
        expected=format_array(expected),
        actual=format_array(actual),
        worst=_worst(actual, expected, tol, locate),
        hint=found,
    )


def _stack(pieces):
    return np.concatenate([np.ravel(p) for p in pieces]) if len(pieces) else np.zeros(0)


def compare_pieces(labels, actual, expected, *, rtol=1e-8, atol=1e-12, variants=(), hint=None, last_first=False,
                   message=None):
    """Compare a list of arrays (one per layer, say) as one answer, and report
    the wrong piece in its own coordinates.

    The pieces pass or fail together, with one tolerance, ``atol + rtol *
    max|expected|`` over all of them, as :func:`compare` on their
    concatenation would; the diagnosis (variants, generic hints) also runs on
    the concatenation.  The report then shows one wrong piece: its label, its
    expected and actual values, and its worst entry as ``"<label>, entry
    [i, j]"``, a position in the matrix on screen, not in the stack.

    Parameters
    ----------
    labels : sequence of str
        The name of each piece, e.g. ``"Qxx of layer 3"``.
    actual, expected : sequence of array_like
        The student's pieces and the reference's: as many, with the same
        shapes (check those first, with messages of the exercise's own).
    variants : sequence of Variant
        Known wrong answers, each a list of pieces (or a callable returning one).
    hint : str, optional
        Fallback hint when nothing matches.
    last_first : bool
        Show the last wrong piece rather than the first: for a sweep that runs
        from the last piece down, where the error starts.
    message : callable, optional
        ``message(k, right) -> str`` for the wrong piece ``k`` and the labels
        of the pieces before it in sweep order (all right); default
        ``"<label> is wrong (<right> are right)"``.

    Raises
    ------
    CheckFailure
    """
    expected = [np.asarray(e, dtype=np.float64) for e in expected]
    actual = [as_array(label, a) for label, a in zip(labels, actual)]
    for label, a, e in zip(labels, actual, expected):
        if a.shape != e.shape:
            raise CheckFailure(f"{label} has shape {a.shape}, expected {e.shape}", expected=format_array(e),
                               actual=format_array(a), hint=hint or f"{label} must have shape {e.shape}")
    flat = [Variant(v.hint, (lambda v=v: _stack(v.value() if callable(v.value) else v.value))) for v in variants]
    try:
        compare("your result", _stack(actual), _stack(expected), rtol=rtol, atol=atol, variants=flat, hint=hint)
    except CheckFailure as failure:
        tol = _tolerance(_stack(expected), rtol, atol)
        bad = [k for k, (a, e) in enumerate(zip(actual, expected)) if not _close(a, e, tol)]
        k = bad[-1] if last_first else bad[0]
        right = [labels[i] for i in (range(len(labels) - 1, k, -1) if last_first else range(k))]
        if message is not None:
            failure.message = message(k, right)
        else:
            failure.message = f"{labels[k]} is wrong" + (
                f" ({', '.join(right)} {'is' if len(right) == 1 else 'are'} right)" if right else "")
        failure.expected, failure.actual = format_array(expected[k]), format_array(actual[k])
        failure.worst = f"{labels[k]}, " + _worst(actual[k], expected[k], tol)
        square = all(a.ndim == 2 and a.shape[0] == a.shape[1] for a in actual)
        if failure.hint in (hint, NO_MATCH) and square and all(_close(a, e.T, tol) for a, e in zip(actual, expected)):
            failure.hint = "your matrices match the transposes of the expected ones: check the order of rows and columns"
        raise


def expect(condition, message, *, hint=None, expected=None, actual=None):
    """Fail with ``message`` unless ``condition``."""
    if not condition:
        raise CheckFailure(message, hint=hint, expected=expected, actual=actual)


# -- watching the student's calls ---------------------------------------------------------


def code_of(obj):
    """The code object behind a function, method, property (cached or not),
    class or NumPy dispatcher."""
    if isinstance(obj, property):
        obj = obj.fget
    if isinstance(obj, functools.cached_property):
        obj = obj.func
    if isinstance(obj, type):
        obj = obj.__init__
    obj = getattr(obj, "__func__", obj)
    while hasattr(obj, "__wrapped__"):
        obj = obj.__wrapped__
    return getattr(obj, "__code__", None)


def methods(owner, names, label):
    """``(function, label)`` pairs for the methods ``names`` of ``owner`` that exist.

    Exercises forbid library internals by name; a method renamed by a later
    refactoring is skipped rather than breaking every grading.
    """
    found = []
    for name in names:
        obj = getattr(owner, name, None)
        if obj is not None and code_of(obj) is not None:
            found.append((obj, label.format(name=name)))
    return found


class Guard:
    """Notices, during a student call, calls that the exercise rules out.

    Two kinds of rule:

    * *forbidden* functions: the reference the answer is graded against
      (found by code object, so an alias such as ``from hessinv_ref.hvp
      import hvp as h`` is caught too);
    * *whole-system solves*: a dense solver (``numpy.linalg.solve`` and
      friends) applied to a matrix larger than ``max_system``, for the
      exercises whose point is to solve block by block.

    It uses :func:`sys.setprofile` only while a student function runs.
    """

    def __init__(self):
        self.forbidden = {}
        self.solvers = {}
        self.max_system = None
        self.violation = None

    def forbid(self, obj, label):
        code = code_of(obj)
        if code is None:  # pragma: no cover - a bug in an exercise's FORBIDDEN list
            raise TypeError(f"cannot find the code of {obj!r}")
        self.forbidden[code] = label

    def watch_solver(self, obj, label):
        code = code_of(obj)
        if code is not None:
            self.solvers[code] = label

    def _profile(self, frame, event, arg):
        if event != "call" or self.violation is not None:
            return
        code = frame.f_code
        label = self.forbidden.get(code)
        if label is not None:
            self.violation = ("forbidden", label)
            return
        if self.max_system is not None and code in self.solvers:
            first = frame.f_locals.get(code.co_varnames[0]) if code.co_argcount else None
            shape = np.shape(first) if first is not None and hasattr(first, "shape") else np.shape(first)
            if len(shape) == 2 and max(shape) > self.max_system:
                self.violation = ("solver", f"{self.solvers[code]} on a {shape[0]}×{shape[1]} matrix")

    @contextlib.contextmanager
    def watching(self, max_system=None):
        self.max_system, self.violation = max_system, None
        if not self.forbidden and max_system is None:  # nothing to watch: spare the profiling overhead
            yield self
            return
        previous = sys.getprofile()
        sys.setprofile(self._profile)
        try:
            yield self
        finally:
            sys.setprofile(previous)
            self.max_system = None


def _alarm(signum, frame):
    raise StudentTimeout("cpu" if signum == getattr(signal, "SIGPROF", None) else "wall")


@contextlib.contextmanager
def _time_limit(seconds, wall):
    """Raise :class:`StudentTimeout` in this (main) thread after ``seconds`` of
    CPU time (``ITIMER_PROF``: user plus system time of this process), or
    after ``wall`` seconds by the clock (``ITIMER_REAL``), whichever comes
    first.  A no-op where ``signal.setitimer`` is missing."""
    if not (hasattr(signal, "setitimer") and hasattr(signal, "SIGPROF")) or seconds <= 0:
        yield
        return
    if signal.getitimer(signal.ITIMER_PROF)[0] > 0:  # inside another limited call: its limit governs
        yield
        return
    old = {sig: signal.signal(sig, _alarm) for sig in (signal.SIGPROF, signal.SIGALRM)}
    signal.setitimer(signal.ITIMER_PROF, seconds)
    signal.setitimer(signal.ITIMER_REAL, wall)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in old.items():
            signal.signal(sig, handler)


class Student:
    """The student's definitions and the one door into them.

    Parameters
    ----------
    path : str
        The student's file; frames whose file name starts with it are theirs.
    namespace : dict
        What their cells defined.
    guard : Guard
    call_limit : float
        CPU seconds one call may use (enforced with ``signal.setitimer`` where
        available).
    cell_errors : dict
        Name of a cell's failure, keyed by nothing in particular; used to
        explain a missing name (a cell that raised never defined it).
    wall_limit : float, optional
        Seconds by the clock one call may take (default
        :func:`wall_backstop` of ``call_limit``).
    """

    def __init__(self, path, namespace, guard, call_limit, cell_errors=(), wall_limit=None):
        self.path, self.namespace, self.guard = str(path), namespace, guard
        self.call_limit = float(call_limit)
        self.wall_limit = wall_backstop(call_limit) if wall_limit is None else float(wall_limit)
        self.cell_errors = list(cell_errors)
        self.timed_out = set()

    def get(self, name):
        """The student's object ``name``, or a "missing" failure."""
        if name not in self.namespace:
            msg = f"`{name}` is not defined: the notebook must define it (keep the name of the stub)"
            if self.cell_errors:
                msg += f"; note that {self.cell_errors[0]}"
            raise CheckFailure(msg, kind="missing")
        return self.namespace[name]

    def call(self, name, *args, max_system=None, **kwargs):
        """Call the student's function ``name`` (see :meth:`invoke`)."""
        return self.invoke(name, self.get(name), *args, max_system=max_system, **kwargs)

    def invoke(self, label, fn, *args, max_system=None, **kwargs):
        """Call ``fn(*args, **kwargs)`` as student code.

        Parameters
        ----------
        label : str
            How to name the call in messages, e.g. ``"dense_vjp"`` or ``"layer.vjp"``.
        max_system : int, optional
            Largest matrix a dense solver may be applied to (see :class:`Guard`).

        Raises
        ------
        CheckFailure
            ``not_implemented``, ``error``, ``timeout`` or ``forbidden``.
        """
        if label in self.timed_out:
            raise CheckFailure(
                f"skipped: `{label}` ran past the time limit in an earlier check",
                kind="timeout",
                hint="look for a loop that never ends",
            )
        if not callable(fn):
            raise CheckFailure(f"`{label}` is {_describe_type(fn)}, not a function", kind="error")
        try:
            with _time_limit(self.call_limit, self.wall_limit), self.guard.watching(max_system):
                result = fn(*args, **kwargs)
        except StudentTimeout as stop:
            self.timed_out.add(label)
            if stop.clock == "cpu":
                raise CheckFailure(
                    f"`{label}` did not return within {self.call_limit:g} s of CPU time",
                    kind="timeout",
                    hint="look for a loop that never ends (a while loop whose condition never changes)",
                ) from None
            raise CheckFailure(
                f"`{label}` did not return within {self.wall_limit:g} s by the clock, "
                f"although it used less than its {self.call_limit:g} s of CPU time",
                kind="timeout",
                hint="it spent most of that time not computing: it waits (time.sleep, input(), a lock), "
                "or the machine is extremely busy",
            ) from None
        except CheckFailure:  # a grader helper run inside the call (e.g. a library call's checks): pass it on
            raise
        except BaseException as exc:  # noqa: BLE001 - anything the student raises is a failed check
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise self._explain(label, exc) from None
        violation = self.guard.violation
        if violation is not None:
            kind, what = violation
            if kind == "forbidden":
                raise CheckFailure(
                    f"`{label}` calls {what}",
                    kind="forbidden",
                    hint=f"{what} is the reference this exercise is graded against: compute the result "
                    "yourself from the pieces the exercise allows",
                )
            raise CheckFailure(
                f"`{label}` solves the whole system at once ({what})",
                kind="forbidden",
                hint="the point of the exercise is to work block by block: factor only the "
                "diagonal blocks / Schur complements, never the assembled matrix",
            )
        return result

    def _student_frames(self, exc):
        frames = traceback.extract_tb(exc.__traceback__)
        return [f for f in frames if f.filename.startswith(self.path)]

    def _explain(self, label, exc):
        frames = self._student_frames(exc)
        last = frames[-1] if frames else None
        where = ""
        if last is not None:
            where = f" at {_location(last)}"
            text = (last.line or linecache.getline(last.filename, last.lineno)).strip()
            if text:
                where += f": `{text}`"
        if isinstance(exc, NotImplementedError):
            inner = last.name if last is not None and last.name != "<module>" else label
            if label.endswith("." + inner) or label.startswith(inner + "("):
                inner = label  # a method named by its class: "MyActivation.f"
            via = f" (called from `{label}`)" if inner != label else ""
            return CheckFailure(
                f"not implemented: `{inner}`{via} still raises NotImplementedError{where}",
                kind="not_implemented",
                hint="replace the `raise NotImplementedError` line of the stub with your code",
            )
        detail = str(exc)
        if len(detail) > 300:
            detail = detail[:300] + "..."
        if isinstance(exc, SystemExit):
            detail = f"exit status {exc.code}"
        return CheckFailure(f"`{label}` raised {type(exc).__name__}: {detail}{where}", kind="error")


def _location(frame):
    name = frame.filename
    if " (cell " in name:  # an .ipynb cell: "path (cell 3)"
        return f"{name.rsplit('/', 1)[-1]}, line {frame.lineno}"
    return f"line {frame.lineno} of {name.rsplit('/', 1)[-1]}"


# -- cases and checks --------------------------------------------------------------------


@dataclass
class Cases:
    """The inputs of a check.

    Attributes
    ----------
    seeded : list of dict
        Always run first, in order: hand-picked small cases, including the
        ones that tell common mistakes apart.
    space : dict
        Where extra cases are drawn from: each key maps to a ``range`` of
        ints or a list of choices.
    build : callable
        ``build(params) -> case``: the object handed to the check.
    describe : callable, optional
        ``describe(params) -> str`` for the report; defaults to ``key=value`` pairs.
    fix : callable, optional
        ``fix(params) -> params`` enforcing constraints between keys.
    """

    seeded: list
    space: dict
    build: Callable
    describe: Callable | None = None
    fix: Callable | None = None

    def text(self, params):
        if self.describe is not None:
            return self.describe(params)
        return ", ".join(f"{k}={v!r}" for k, v in params.items())

    def strategy(self):
        """The hypothesis strategy of :attr:`space` (imports hypothesis)."""
        from hypothesis import strategies as st

        parts = {}
        for key, choices in self.space.items():
            if isinstance(choices, range):
                parts[key] = st.integers(choices.start, choices.stop - 1)
            else:
                parts[key] = st.sampled_from(list(choices))
        strat = st.fixed_dictionaries(parts)
        return strat.map(self.fix) if self.fix is not None else strat

    def draw(self, rng):
        """One case from :attr:`space` with a NumPy generator (no hypothesis)."""
        params = {}
        for key, choices in self.space.items():
            if isinstance(choices, range):
                params[key] = int(rng.integers(choices.start, choices.stop))
            else:
                choices = list(choices)
                params[key] = choices[int(rng.integers(len(choices)))]
        return self.fix(params) if self.fix is not None else params


@dataclass
class Check:
    """One line of the report.

    Attributes
    ----------
    id : str
        Stable identifier (used by ``--json`` and the tests).
    title : str
        What is checked, in words.
    run : callable
        ``run(student, case)``; raises :class:`CheckFailure`.
    cases : Cases or None
        ``None`` for a check without inputs (run once with ``case=None``).
    """

    id: str
    title: str
    run: Callable
    cases: Cases | None = None
    max_examples: int | None = None
    """Cap on the drawn cases for an expensive check (``None``: the grader's setting)."""
