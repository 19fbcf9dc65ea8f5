"""Run every tutorial notebook's code, so a broken tutorial fails the test suite.

The tutorials are MyST-markdown notebooks (``tutorials/NN_name.md``).  This
test needs neither Jupyter nor jupytext: it reads the ``{code-cell}`` blocks
itself and executes them in order in one namespace, as a kernel would, with
matplotlib's non-interactive Agg backend.  Tracebacks point at the line of the
``.md`` file.  Only top-level ``tutorials/*.md`` files are collected; exercise
folders below ``tutorials/`` are tested elsewhere.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).resolve().parent.parent / "tutorials").glob("*.md"))

_OPEN = re.compile(r"^(?P<fence>`{3,}|~{3,})\{code-cell\}")


def code_cells(text):
    """Yield ``(first_line, source)`` for each ``{code-cell}`` block of a MyST notebook.

    ``first_line`` is the 0-based line of the cell's first source line in the
    file.  Cell options (``:key: value`` lines or a ``---`` YAML block at the
    top of the cell) are skipped.
    """
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _OPEN.match(lines[i])
        if not match:
            i += 1
            continue
        fence = match["fence"]
        i += 1
        if i < len(lines) and lines[i].strip() == "---":  # YAML options block
            i += 1
            while i < len(lines) and lines[i].strip() != "---":
                i += 1
            i += 1
        while i < len(lines) and re.match(r"^:[\w-]+:", lines[i]):  # short options
            i += 1
        start, body = i, []
        while i < len(lines) and not (
            lines[i].startswith(fence[0] * len(fence)) and lines[i].strip("`~ ") == ""
        ):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"code cell opened before line {start} is never closed")
        yield start, "\n".join(body)
        i += 1


def test_tutorials_are_found():
    assert TUTORIALS, "no tutorials/*.md found"


def test_code_cells_parser():
    text = "\n".join([
        "# t", "```{code-cell} ipython3", "a = 1", "```", "text",
        "```{code-cell} ipython3", "---", "tags: [hide-cell]", "---", "b = a + 1", "```",
        "````{code-cell} ipython3", ":tags: [x]", "c = '```'", "````",
    ])
    assert list(code_cells(text)) == [(2, "a = 1"), (9, "b = a + 1"), (13, "c = '```'")]


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path, monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    # plt.show() would warn under Agg; a figure that was shown is done with.
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: plt.close("all"))
    monkeypatch.chdir(path.parent)  # a kernel starts in the notebook's folder

    namespace = {"__name__": "__main__"}
    cells = list(code_cells(path.read_text(encoding="utf-8")))
    assert cells, f"{path.name}: no code cells"
    try:
        for start, source in cells:
            # Leading blank lines make tracebacks report the .md file's line numbers.
            code = compile("\n" * start + source, str(path), "exec")
            exec(code, namespace)
    finally:
        plt.close("all")
