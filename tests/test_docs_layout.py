"""Source-level guards for two rendering faults of the documentation site.

* **Code that scrolls sideways.**  The site's text column holds about 91
  characters of code (furo's 46em column and code font, measured in headless
  Chromium at a 1280-pixel window).  Source code does not wrap, so every line
  of a code cell or code block in the pages and tutorials is kept to
  ``MAX_CODE_LINE`` characters.  Printed output and quoted messages
  (``text`` blocks, cell outputs) wrap instead, by ``docs/_static/hessinv.css``.
* **A backslash in rendered math.**  MathJax shows ``\\text{a\\_b}`` with its
  backslash; outside math, an identifier needs no escape (write
  ````pivot_condition````).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_CODE_LINE = 90

PAGES = sorted((ROOT / "tutorials").glob("*.md"))
PAGES += sorted(p for p in (ROOT / "docs").rglob("*.md")
                if not any(part in ("_build", "jupyter_execute", "tutorials", "exercises")
                           for part in p.relative_to(ROOT / "docs").parts[:-1]))
EXERCISES = sorted((ROOT / "tutorials" / "exercises").glob("*.md"))
SOURCES = PAGES + EXERCISES + sorted((ROOT / "hessinv_ref").rglob("*.py"))

_OPEN = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
# fenced blocks that hold prose or printed output, which may wrap
_NOT_CODE = re.compile(r"^\s*(?:text|none|console|\{(?:dropdown|note|admonition|only|grid|grid-item-card|toctree|eval-rst|testoutput|math)\}.*)?$")


def long_code_lines(text, limit=MAX_CODE_LINE):
    """``(line number, length)`` of each code line longer than ``limit``."""
    long, fence, code = [], None, False
    for number, line in enumerate(text.splitlines(), start=1):
        if fence is None:
            m = _OPEN.match(line)
            if m:
                fence, code = m["fence"], not _NOT_CODE.match(m["info"])
            continue
        if line.strip() == fence:
            fence = None
        elif code and len(line) > limit:
            long.append((number, len(line)))
    return long


def test_the_scanner():
    page = "\n".join(["```python", "x" * 91, "```", "```text", "y" * 200, "```",
                      "````{dropdown} a", "z" * 200, "````", "```{code-cell} ipython3", "w" * 90, "```"])
    assert long_code_lines(page) == [(2, 91)]


@pytest.mark.parametrize("path", PAGES + EXERCISES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES + EXERCISES])
def test_code_fits_the_column(path):
    long = long_code_lines(path.read_text(encoding="utf-8"))
    assert not long, (f"{path.relative_to(ROOT)}: code lines over {MAX_CODE_LINE} characters "
                      f"scroll sideways on the site: " + ", ".join(f"line {n} ({k})" for n, k in long))


@pytest.mark.parametrize("path", SOURCES, ids=[p.relative_to(ROOT).as_posix() for p in SOURCES])
def test_no_escaped_underscore_in_math_text(path):
    bad = [m.group() for m in re.finditer(r"\\text\{[^}]*\\_[^}]*\}", path.read_text(encoding="utf-8"))]
    assert not bad, f"{path.relative_to(ROOT)}: MathJax would show the backslash of {bad}"
