"""Reading exercise files: front matter, code cells, the grader cell, .ipynb."""

from __future__ import annotations

import json

import pytest

from hessinv_ref.grading.notebook import ExerciseFileError, read_student_file

FRONT = "---\njupytext:\n  text_representation:\n    extension: .md\nexercise: 4\n---\n"


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
