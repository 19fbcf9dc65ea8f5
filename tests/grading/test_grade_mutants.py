"""Every wrong answer gets student-facing feedback, never an internal grader error.

The mistake catalogue (``mistakes/``) holds realistic wrong answers, each with
the hint it must get.  This test is its systematic complement: it mutates
every answer key in small mechanical ways, the slips students make,

* ``negate``: a unary minus added to a term, or removed;
* ``swap``: ``+`` for ``-`` or ``-`` for ``+``;
* ``transpose``: ``.T`` on an operand of ``@``;
* ``index``: an integer in an index, a slice or ``range(...)`` off by one
  (``blocks[l - 1]`` becomes ``blocks[l - 0]``, a layer off);
* ``drop``: a term dropped from a sum or a difference;

grades the mutants through the grader's normal entry point, in one batch, and
asserts that each either passes (some slips change nothing, e.g. ``.T`` on a
symmetric matrix) or fails with feedback meant for the student: a message,
and a hint for a wrong value; no "internal grader error", no traceback.

Mutants are generated from the syntax tree of each answer key's function
bodies (never its demo cells), at most :data:`PER_EXERCISE` per exercise, picked
round-robin over the kinds by a generator seeded with the exercise number:
the same mutants on every run.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from hessinv_ref.grading.exercises import EXERCISES, get_exercise
from hessinv_ref.grading.notebook import read_student_file
from hessinv_ref.grading.runner import grade_files

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "tutorials" / "exercises" / "solutions"

KINDS = ("negate", "swap", "transpose", "index", "drop")
PER_EXERCISE = 12
"""Mutants graded per exercise: enough to reach every function, few enough for a shared 2-core machine."""

STUDENT_KINDS = {"wrong", "not_implemented", "missing", "error", "timeout", "forbidden"}
"""Failure kinds that are feedback on the student's code (not "grader_error", nor "not_run")."""


@dataclass(frozen=True)
class Mutant:
    kind: str
    cell: int  # index of the code cell (1-based, as the grader counts)
    line: int  # line of the .md file where the edit is
    before: str
    after: str
    text: str  # the whole mutated file

    @property
    def name(self):
        return f"{self.kind}@{self.line}"


# -- finding the edits ------------------------------------------------------------------------


class _Source:
    """A cell's source with the offsets the AST gives (line, UTF-8 byte column) turned into str offsets."""

    def __init__(self, source):
        self.text = source
        self._starts, pos = [], 0
        for line in source.splitlines(keepends=True):
            self._starts.append(pos)
            pos += len(line)
        self._lines = source.splitlines(keepends=True)

    def offset(self, lineno, col):
        line = self._lines[lineno - 1]
        return self._starts[lineno - 1] + len(line.encode("utf-8")[:col].decode("utf-8", errors="ignore"))

    def span(self, node):
        return self.offset(node.lineno, node.col_offset), self.offset(node.end_lineno, node.end_col_offset)

    def segment(self, node):
        start, end = self.span(node)
        return self.text[start:end]


def _function_nodes(tree):
    """Every node inside a function body (methods included), docstrings left out."""
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = fn.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]
        for stmt in body:
            yield from ast.walk(stmt)


def _is_int(node):
    return isinstance(node, ast.Constant) and type(node.value) is int


def _edits(src, tree):
    """``(kind, start, end, replacement)`` for every site of every kind, in tree order."""
    seen = set()
    for node in _function_nodes(tree):
        if id(node) in seen:  # a node nested in two function bodies' walks (a def inside a def)
            continue
        seen.add(id(node))
        if isinstance(node, ast.BinOp):
            left_end = src.span(node.left)[1]
            right_start = src.span(node.right)[0]
            between = src.text[left_end:right_start]
            if isinstance(node.op, (ast.Add, ast.Sub)) and "#" not in between:
                sym, other = ("+", "-") if isinstance(node.op, ast.Add) else ("-", "+")
                i = between.find(sym)
                if i >= 0:
                    yield "swap", left_end + i, left_end + i + 1, other
                start, end = src.span(node)
                # Drop the right-hand term; for a sum, the left-hand one too.
                yield "drop", start, end, src.segment(node.left)
                if isinstance(node.op, ast.Add):
                    yield "drop", start, end, src.segment(node.right)
            if isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.MatMult)) and not isinstance(node.right, ast.Constant):
                start, end = src.span(node.right)
                yield "negate", start, end, f"(-{src.segment(node.right)})"
            if isinstance(node.op, ast.MatMult):
                for operand in (node.left, node.right):
                    if isinstance(operand, (ast.Name, ast.Attribute)) and not (
                            isinstance(operand, ast.Attribute) and operand.attr == "T"):
                        start, end = src.span(operand)
                        yield "transpose", start, end, src.segment(operand) + ".T"
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and not isinstance(node.operand, ast.Constant):
            start, end = src.span(node)
            yield "negate", start, end, src.segment(node.operand)
        elif isinstance(node, ast.Subscript):
            for sub in ast.walk(node.slice):
                if _is_int(sub):
                    start, end = src.span(sub)
                    yield "index", start, end, str(sub.value + 1 if sub.value <= 0 else sub.value - 1)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
            for arg in node.args:
                if _is_int(arg):
                    start, end = src.span(arg)
                    yield "index", start, end, str(arg.value + 1 if arg.value <= 0 else arg.value - 1)


def mutants(number, per_exercise=PER_EXERCISE):
    """The mutants of exercise ``number``'s answer key (deterministic)."""
    path = SOLUTIONS / get_exercise(number).FILE
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    by_kind, texts = {kind: [] for kind in KINDS}, set()
    for cell in read_student_file(path).student_cells:
        tree = ast.parse(cell.source)
        if not any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) for n in tree.body):
            continue  # a demo cell: a slip there would only be a note
        src = _Source(cell.source)
        for kind, start, end, new in _edits(src, tree):
            mutated = src.text[:start] + new + src.text[end:]
            if mutated == src.text or (cell.index, mutated) in texts:  # no edit, or one that another made
                continue
            texts.add((cell.index, mutated))
            try:
                ast.parse(mutated)
            except SyntaxError:
                continue
            n_lines = len(cell.source.splitlines())
            body = lines[cell.line - 1:cell.line - 1 + n_lines]
            assert "".join(body).rstrip("\n") == cell.source, f"{path.name}: cell {cell.index} is not where it says"
            new_text = "".join(lines[:cell.line - 1]) + mutated + "\n" + "".join(lines[cell.line - 1 + n_lines:])
            line = cell.line + src.text[:start].count("\n")
            by_kind[kind].append(Mutant(kind, cell.index, line, src.text[start:end], new, new_text))
    rng = np.random.default_rng(number)
    for kind in KINDS:
        rng.shuffle(by_kind[kind])
    picked = []
    while len(picked) < per_exercise and any(by_kind.values()):
        for kind in KINDS:
            if by_kind[kind] and len(picked) < per_exercise:
                picked.append(by_kind[kind].pop())
    return picked


# -- grading them ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graded_mutants(tmp_path_factory):
    """Every exercise's mutants, graded in one batch: number -> [(mutant, report)]."""
    folder = tmp_path_factory.mktemp("mutants")
    work = []
    for number in sorted(EXERCISES):
        for i, m in enumerate(mutants(number)):
            path = folder / f"{Path(get_exercise(number).FILE).stem}_m{i:02d}.md"
            path.write_text(m.text, encoding="utf-8")
            work.append((number, m, path))
    # Seeded cases only (they are the ones chosen to tell mistakes apart), two files at a time.
    reports = grade_files([p for _, _, p in work], timeout=30, examples=0, jobs=2, call_limit=1.0)
    out = {n: [] for n in EXERCISES}
    for (number, m, _), report in zip(work, reports):
        out[number].append((m, report))
    return out


def _problems(m, report):
    """What is wrong with a mutant's report, from the student's point of view (empty: nothing)."""
    where = f"{m.kind} at line {m.line}: `{m.before}` -> `{m.after}`"
    if report.error is not None:
        return [f"{where}: not graded: {report.error}"]
    found = []
    for note in report.notes:
        if "Traceback" in note or "grader log" in note or "stopped unexpectedly" in note:
            found.append(f"{where}: note {note!r}")
    for c in report.checks:
        fields = [c.message, c.case, c.expected, c.actual, c.worst, c.hint]
        if any(f and ("internal grader error" in f or "Traceback (most recent call last)" in f) for f in fields):
            found.append(f"{where}: {c.id}: {c.kind}: {c.message}\n{c.hint}")
            continue
        if c.passed:
            continue
        if c.kind not in STUDENT_KINDS:
            found.append(f"{where}: {c.id}: kind {c.kind}: {c.message}")
        elif not c.message:
            found.append(f"{where}: {c.id}: failed without a message")
        elif c.kind == "wrong" and not c.hint:
            found.append(f"{where}: {c.id}: a wrong value without a hint: {c.message}")
    return found


def test_mutants_are_deterministic_and_of_every_kind():
    first = [(m.kind, m.line, m.after) for m in mutants(8)]
    assert first == [(m.kind, m.line, m.after) for m in mutants(8)]
    kinds = {m.kind for n in EXERCISES for m in mutants(n)}
    assert kinds == set(KINDS), kinds
    for n in EXERCISES:
        ms = mutants(n)
        assert 1 <= len(ms) <= PER_EXERCISE
        assert len({m.text for m in ms}) == len(ms), f"exercise {n}: duplicate mutants"


@pytest.mark.parametrize("number", sorted(EXERCISES))
def test_every_mutant_gets_student_feedback_never_a_grader_error(graded_mutants, number):
    results = graded_mutants[number]
    problems = [p for m, report in results for p in _problems(m, report)]
    assert not problems, "\n\n".join(problems)
    # The mutations reach the graded code: most mutants fail a check.
    failing = sum(not report.passed for _, report in results)
    assert failing >= len(results) // 2, f"exercise {number}: only {failing} of {len(results)} mutants fail"
