"""Reading exercise files: front matter, code cells, the grader cell, .ipynb."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hessinv_ref.grading.notebook import ExerciseFileError, find_exercise_file, read_student_file

FRONT = "---\njupytext:\n  text_representation:\n    extension: .md\nexercise: 4\n---\n"
CELL = "```{code-cell} ipython3\nx = 1\n```\n"
NB = {"cells": [{"cell_type": "code", "source": "x = 1", "metadata": {}}], "metadata": {}, "nbformat": 4,
      "nbformat_minor": 5}


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_front_matter_cells_lines_and_grader_cell(tmp_path):
    text = FRONT + "\n".join([
        "# Title",                                   # line 7
        "```{code-cell} ipython3",
        "a = 1",                                     # line 9
        "```",
        "````{code-cell} ipython3",
        "---",
        "tags: [hide-cell]",
        "---",
        "s = '```'",                                 # line 15
        "````",
        "```{code-cell} ipython3",
        ":tags: [grader]",
        "grade('x.md')",                             # line 19
        "```",
        "```{code-cell} ipython3",
        "from hessinv_ref.grade import grade",       # line 22
        "```",
    ])
    sf = read_student_file(write(tmp_path, "anything.md", text))
    assert sf.exercise == 4
    assert [(c.index, c.line, c.source) for c in sf.cells] == [
        (1, 9, "a = 1"), (2, 15, "s = '```'"), (3, 19, "grade('x.md')"), (4, 22, "from hessinv_ref.grade import grade")]
    assert sf.cells[1].tags == ("hide-cell",) and sf.cells[2].tags == ("grader",)
    assert [c.index for c in sf.student_cells] == [1, 2]  # tagged and importing cells are the grader's


def test_exercise_from_file_name_and_override(tmp_path):
    cell = "```{code-cell} ipython3\nx = 1\n```\n"
    assert read_student_file(write(tmp_path, "ex07_mine.md", cell)).exercise == 7
    assert read_student_file(write(tmp_path, "ex07_b.md", cell), exercise=2).exercise == 2


def test_unidentified_file_is_a_clear_error(tmp_path):
    with pytest.raises(ExerciseFileError, match="cannot tell which exercise"):
        read_student_file(write(tmp_path, "homework.md", "```{code-cell} ipython3\nx = 1\n```\n"))


def test_missing_file_says_to_save(tmp_path):
    with pytest.raises(ExerciseFileError, match="save the notebook first"):
        read_student_file(tmp_path / "ex01_activation.md")


def test_unclosed_cell_and_empty_file(tmp_path):
    with pytest.raises(ExerciseFileError, match="never closed"):
        read_student_file(write(tmp_path, "ex01.md", "```{code-cell} ipython3\nx = 1\n"))
    with pytest.raises(ExerciseFileError, match="no code cells"):
        read_student_file(write(tmp_path, "ex01.md", FRONT + "just prose\n"))


def test_ipynb_cells_and_metadata(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "source": ["x"], "metadata": {}},
                    {"cell_type": "code", "source": ["a = 1\n", "b = 2"], "metadata": {}},
                    {"cell_type": "code", "source": "grade('ex.ipynb')", "metadata": {"tags": ["grader"]}}],
          "metadata": {"exercise": 6}}
    sf = read_student_file(write(tmp_path, "mine.ipynb", json.dumps(nb)))
    assert sf.exercise == 6
    assert [c.source for c in sf.student_cells] == ["a = 1\nb = 2"]
    with pytest.raises(ExerciseFileError, match="not a readable"):
        read_student_file(write(tmp_path, "bad.ipynb", "{not json"))


# -- which file a grading cell grades -------------------------------------------------------------


def _touch(path, text, mtime):
    path.write_text(text, encoding="utf-8")
    os.utime(path, (mtime, mtime))
    return path


def test_a_file_name_with_its_extension_is_that_file(tmp_path):
    assert find_exercise_file("ex03_dense_curvature.md", tmp_path) == (Path("ex03_dense_curvature.md"), None)
    assert find_exercise_file(tmp_path / "mine.ipynb", tmp_path, running=None)[0] == tmp_path / "mine.ipynb"


def test_a_bare_name_is_the_ipynb_or_the_md_saved_last(tmp_path):
    md = _touch(tmp_path / "ex08_riccati.md", "x", 1_000_000)
    assert find_exercise_file("ex08_riccati", tmp_path) == (md, None)
    nb = _touch(tmp_path / "ex08_riccati.ipynb", "{}", 2_000_000)
    path, note = find_exercise_file("ex08_riccati", tmp_path)
    assert path == nb and "saved more recently than ex08_riccati.md" in note and 'grade("ex08_riccati.md")' in note
    os.utime(md, (3_000_000, 3_000_000))
    assert find_exercise_file("ex08_riccati", tmp_path)[0] == md
    with pytest.raises(ExerciseFileError, match="no ex01_activation.ipynb or ex01_activation.md"):
        find_exercise_file("ex01_activation", tmp_path)
    with pytest.raises(ExerciseFileError, match="name the file to grade"):
        find_exercise_file(None, tmp_path)


def test_the_running_notebook_wins_when_it_is_that_exercise(tmp_path):
    _touch(tmp_path / "ex08_riccati.md", FRONT.replace("exercise: 4", "exercise: 8") + CELL, 3_000_000)
    # Renamed by Jupyter ("Copy1"), saved before the .md: still the one that runs the cell.
    nb = _touch(tmp_path / "ex08_riccati-Copy1.ipynb", json.dumps(NB | {"metadata": {"exercise": 8}}), 1_000_000)
    assert find_exercise_file("ex08_riccati", tmp_path, running=nb) == (nb, None)
    assert find_exercise_file(None, tmp_path, running=nb) == (nb, None)
    # A scratch notebook of another exercise grading this one by name grades the named file.
    other = _touch(tmp_path / "scratch.ipynb", json.dumps(NB | {"metadata": {"exercise": 3}}), 4_000_000)
    assert find_exercise_file("ex08_riccati", tmp_path, running=other)[0] == tmp_path / "ex08_riccati.md"


def test_running_notebook_reads_what_jupyter_tells_the_kernel(tmp_path, monkeypatch):
    from hessinv_ref.grade import running_notebook

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delitem(__import__("sys").modules, "IPython", raising=False)
    assert running_notebook() is None
    nb = _touch(tmp_path / "ex08_riccati.ipynb", json.dumps(NB), 1_000_000)
    # Jupyter Server gives the path from its root folder; the kernel runs in the notebook's folder.
    monkeypatch.setenv("JPY_SESSION_NAME", "course/week8/ex08_riccati.ipynb")
    assert running_notebook() == nb.resolve()
    monkeypatch.setenv("JPY_SESSION_NAME", str(nb))
    assert running_notebook() == nb.resolve()
    monkeypatch.setenv("JPY_SESSION_NAME", "3f2c1a-console-session")  # a console: no notebook
    assert running_notebook() is None
