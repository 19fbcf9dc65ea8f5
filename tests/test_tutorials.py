"""Run every tutorial notebook's code, so a broken tutorial fails the test suite.

The tutorials are MyST-markdown notebooks (``tutorials/NN_name.md``).  This
test needs neither Jupyter nor jupytext: it reads the ``{code-cell}`` blocks
with the grader's notebook parser and executes them in order in one namespace, as a kernel would, with
matplotlib's non-interactive Agg backend.  Tracebacks point at the line of the
``.md`` file.  Only top-level ``tutorials/*.md`` files are collected; exercise
folders below ``tutorials/`` are tested elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hessinv_ref.grading.notebook import md_code_cells

TUTORIALS = sorted((Path(__file__).resolve().parent.parent / "tutorials").glob("*.md"))


def test_tutorials_are_found():
    assert TUTORIALS, "no tutorials/*.md found"


def test_code_cells_parser():
    text = "\n".join([
        "# t", "```{code-cell} ipython3", "a = 1", "```", "text",
        "```{code-cell} ipython3", "---", "tags: [hide-cell]", "---", "b = a + 1", "```",
        "````{code-cell} ipython3", ":tags: [x]", "c = '```'", "````",
    ])
    cells = md_code_cells(text)
    assert [(c.line, c.source) for c in cells] == [(3, "a = 1"), (10, "b = a + 1"), (14, "c = '```'")]


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path, monkeypatch):
    import matplotlib  # in the test extra: a missing install must fail, not skip

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    # plt.show() would warn under Agg; a figure that was shown is done with.
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: plt.close("all"))
    monkeypatch.chdir(path.parent)  # a kernel starts in the notebook's folder

    namespace = {"__name__": "__main__"}
    cells = md_code_cells(path.read_text(encoding="utf-8"))
    assert cells, f"{path.name}: no code cells"
    try:
        for cell in cells:
            # Leading blank lines make tracebacks report the .md file's line numbers.
            code = compile("\n" * (cell.line - 1) + cell.source, str(path), "exec")
            exec(code, namespace)
    finally:
        plt.close("all")
