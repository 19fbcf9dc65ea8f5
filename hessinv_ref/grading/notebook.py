"""Reading a student's exercise file: its front matter and its code cells.

Exercises are MyST-markdown notebooks (the format of the tutorials): a YAML
front matter between ``---`` lines, prose, and ``{code-cell}`` blocks.  A
student may also hand in the ``.ipynb`` that jupytext or Jupyter made from
it.  Both give the same :class:`StudentFile`: the exercise number and the
code cells, each with the line of the file where its source starts, so that
a traceback from the student's code can name the line in *their* file.

The cell that calls the grader is not student code and is never run by it:
a cell is skipped when it is tagged ``grader`` or when it imports from
``hessinv_ref.grade`` (running it inside the grader would grade recursively).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Cell", "StudentFile", "read_student_file", "find_exercise_file", "ExerciseFileError"]

_OPEN = re.compile(r"^(?P<fence>`{3,}|~{3,})\{code-cell\}")
_GRADER_IMPORT = re.compile(r"\bhessinv_ref\.grad(e|ing)\b|\bfrom\s+hessinv_ref\s+import\s+grade\b")
_EXERCISE_KEY = re.compile(r"^exercise\s*:\s*(?P<n>\d+)\s*$", re.MULTILINE)
_EXERCISE_NAME = re.compile(r"^ex(?P<n>\d+)(?:_|\b)")


class ExerciseFileError(ValueError):
    """The file cannot be read as an exercise (missing, unparsable, unidentified)."""


@dataclass(frozen=True)
class Cell:
    """One code cell.

    Attributes
    ----------
    index : int
        1-based position among the file's code cells (grader cell included),
        as a student counts them in Jupyter.
    line : int
        1-based line of the file where the source starts (0 for ``.ipynb``,
        whose cells have no file lines).
    source : str
    tags : tuple of str
    """

    index: int
    line: int
    source: str
    tags: tuple = ()

    @property
    def is_grader(self):
        """Whether this is the cell that calls the grader."""
        return "grader" in self.tags or bool(_GRADER_IMPORT.search(self.source))


@dataclass
class StudentFile:
    """A parsed exercise file.

    Attributes
    ----------
    path : Path
    exercise : int or None
        From the front-matter key ``exercise`` (``.md``), the notebook
        metadata key ``exercise`` (``.ipynb``), or the file name ``exNN_*``.
    cells : list of Cell
        Every code cell, the grader's included (see :attr:`Cell.is_grader`).
    """

    path: Path
    exercise: int | None
    cells: list = field(default_factory=list)

    @property
    def student_cells(self):
        """The cells the grader runs: all but the grading cell."""
        return [c for c in self.cells if not c.is_grader]


def _front_matter(lines):
    """Return ``(text, n_lines)`` of a leading ``---`` YAML block, or ``("", 0)``."""
    if not lines or lines[0].strip() != "---":
        return "", 0
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            return "\n".join(lines[1:i]), i + 1
    raise ExerciseFileError("the front matter opened on line 1 is never closed by '---'")


def _cell_options(lines, i):
    """Skip a cell's options; return ``(first source line index, tags)``."""
    tags = ()
    if i < len(lines) and lines[i].strip() == "---":  # YAML options block
        i += 1
        while i < len(lines) and lines[i].strip() != "---":
            tags += _tags_of(lines[i])
            i += 1
        i += 1
    while i < len(lines) and re.match(r"^:[\w-]+:", lines[i]):  # short options
        tags += _tags_of(lines[i])
        i += 1
    return i, tags


def _tags_of(option_line):
    match = re.match(r"^:?tags:?\s*\[(?P<tags>[^\]]*)\]", option_line.strip())
    if not match:
        return ()
    return tuple(t.strip().strip("'\"") for t in match["tags"].split(",") if t.strip())


def md_code_cells(text):
    """The ``{code-cell}`` blocks of a MyST-markdown notebook, as :class:`Cell`
    objects in file order (cell options and a ``---`` options block skipped).

    Raises
    ------
    ExerciseFileError
        If a code cell is never closed.
    """
    lines = text.splitlines()
    _, i = _front_matter(lines)
    cells = []
    while i < len(lines):
        match = _OPEN.match(lines[i])
        if not match:
            i += 1
            continue
        fence, opened = match["fence"], i + 1
        i, tags = _cell_options(lines, i + 1)
        start, body = i, []
        while i < len(lines) and not (
            lines[i].startswith(fence[0] * len(fence)) and lines[i].strip("`~ ") == ""
        ):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ExerciseFileError(f"the code cell opened on line {opened} is never closed")
        cells.append(Cell(len(cells) + 1, start + 1, "\n".join(body), tags))
        i += 1
    return cells


def _md_exercise(text):
    front, _ = _front_matter(text.splitlines())
    match = _EXERCISE_KEY.search(front)
    return int(match["n"]) if match else None


def _ipynb(path, text):
    try:
        nb = json.loads(text)
        raw_cells, meta = nb["cells"], nb.get("metadata", {})
    except (ValueError, KeyError, TypeError) as err:
        raise ExerciseFileError(f"{path.name}: not a readable .ipynb notebook ({err})") from None
    cells = []
    for raw in raw_cells:
        if raw.get("cell_type") != "code":
            continue
        source = raw.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        tags = tuple(raw.get("metadata", {}).get("tags", ()))
        cells.append(Cell(len(cells) + 1, 0, source, tags))
    exercise = meta.get("exercise")
    return cells, int(exercise) if isinstance(exercise, (int, str)) and str(exercise).isdigit() else None


def read_student_file(path, exercise=None):
    """Parse an exercise file.

    Parameters
    ----------
    path : str or Path
        A ``.md`` (MyST notebook) or ``.ipynb`` file.
    exercise : int, optional
        Overrides the number found in the file.

    Returns
    -------
    StudentFile

    Raises
    ------
    ExerciseFileError
        If the file is missing or unreadable, has no code cells, or names no
        exercise (no ``exercise:`` front-matter key and no ``exNN_`` name).
    """
    path = Path(path)
    if not path.is_file():
        raise ExerciseFileError(
            f"{path}: no such file (save the notebook first; a relative path is "
            f"taken from the current folder {Path.cwd()})"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ExerciseFileError(f"{path}: cannot read it ({err})") from None
    if path.suffix == ".ipynb":
        cells, found = _ipynb(path, text)
    else:
        cells, found = md_code_cells(text), _md_exercise(text)
    if found is None:
        match = _EXERCISE_NAME.match(path.name)
        found = int(match["n"]) if match else None
    number = exercise if exercise is not None else found
    if number is None:
        raise ExerciseFileError(
            f"{path.name}: cannot tell which exercise this is: expected a front-matter "
            f"line 'exercise: N', a file name 'exNN_...', or --exercise N"
        )
    if not cells:
        raise ExerciseFileError(f"{path.name}: no code cells found")
    return StudentFile(path.resolve(), int(number), cells)


SUFFIXES = (".ipynb", ".md")
"""What an exercise file may be: the notebook Jupyter saves, or the MyST-markdown original."""


def _number_in_name(name):
    match = _EXERCISE_NAME.match(Path(name).name)
    return int(match["n"]) if match else None


def find_exercise_file(name=None, folder=None, running=None):
    """Which file to grade, given what the grading cell says.

    Parameters
    ----------
    name : str or Path, optional
        A file with its extension (``.md``, ``.ipynb``): that very file.  An
        exercise's name without one, ``"ex08_riccati"`` (what every
        exercise's last cell passes): the notebook that runs the cell if it
        is known (``running``) and is that exercise (same number, whatever
        its file name); else ``ex08_riccati.ipynb`` or ``ex08_riccati.md`` in
        ``folder``, the one saved last when both are there.  ``None``: the
        running notebook.
    folder : Path, optional
        Where a bare name is looked up (default: the current folder, which is
        the notebook's in Jupyter).
    running : Path, optional
        The notebook the calling kernel runs, if known.

    Returns
    -------
    path : Path
    note : str or None
        Said in the report when the choice needs saying (two candidates).

    Raises
    ------
    ExerciseFileError
        If nothing can be found.
    """
    folder = Path.cwd() if folder is None else Path(folder)
    if name is not None and Path(name).suffix in SUFFIXES:
        return Path(name), None
    if running is not None and running.is_file():
        if name is None:
            return running, None
        wanted = _number_in_name(name)
        try:
            found = read_student_file(running).exercise
        except ExerciseFileError:
            found = None
        if (wanted is not None and found == wanted) or running.stem == Path(name).name:
            return running, None
    if name is None:
        raise ExerciseFileError(
            "cannot tell which notebook runs this cell: name the file to grade, e.g. grade(\"ex03_dense_curvature.ipynb\")")
    base = folder / Path(name)
    candidates = [base.with_name(base.name + suffix) for suffix in SUFFIXES]
    existing = [c for c in candidates if c.is_file()]
    if not existing:
        raise ExerciseFileError(
            f"{name}: no {candidates[0].name} or {candidates[1].name} in {base.parent} (save the notebook first, "
            "or name the file to grade with its extension)")
    if len(existing) == 1:
        return existing[0], None
    newest = max(existing, key=lambda c: os.stat(c).st_mtime_ns)
    other = next(c for c in existing if c != newest)
    return newest, (f"graded {newest.name}, saved more recently than {other.name}; to grade the other, name it: "
                    f'grade("{other.name}")')
