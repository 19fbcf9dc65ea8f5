"""Nothing we ship cites a file we do not ship.

Readers have only the repository: a docstring, documentation page, tutorial or
exercise that points at a private note, or at a path that has moved, leaves
them with a dead reference.  This test reads every package module, every
page under ``docs/``, every notebook under ``tutorials/`` and the README, and
checks three kinds of reference:

* markdown links ``[text](target)`` and MyST ``{doc}`` / ``{download}`` roles
  with a relative target: the target must exist (resolved the way the reader
  resolves it: from the file's folder, or for a ``{doc}`` role in a tutorial,
  from the tutorial's place in the built site, ``docs/tutorials/``);
* repository paths written out in text (``tests/test_fast_paths.py``,
  ``docs/theory/notation.md``): they must exist, from the repository root;
* bare markdown file names (``notation.md``): some file of that name must
  exist in the repository.

The notation reference is ``docs/theory/notation.md``; the design note it
replaced is never cited (its name is checked for explicitly, so the message
says what to cite instead).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS, TUTORIALS = ROOT / "docs", ROOT / "tutorials"

# build outputs and the build-time copies of the notebooks are not sources
_SKIP = ("docs/_build/", "docs/jupyter_execute/", "docs/tutorials/", "docs/exercises/", "docs/api/generated/")


def _sources():
    files = sorted((ROOT / "hessinv_ref").rglob("*.py"))
    files += sorted(DOCS.rglob("*.md")) + sorted(TUTORIALS.rglob("*.md")) + [ROOT / "README.md"]
    return [p for p in files if not any(p.relative_to(ROOT).as_posix().startswith(s) for s in _SKIP)]


SOURCES = _sources()
_REPO_FILES = [p for p in ROOT.rglob("*") if p.is_file() and ".venv" not in p.parts and ".git" not in p.parts]
_NAMES = {p.name for p in _REPO_FILES}

_LINK = re.compile(r"\[(?:[^\]\n]|\n(?!\n))*\]\((?P<target>[^)\s]+)\)")
_ROLE = re.compile(r"\{(?P<role>doc|download)\}`(?:[^`<]*<(?P<a>[^>`]+)>|(?P<b>[^`]+))`")
# a repository path: a known top-level folder, then path characters, then an extension
_PATH = re.compile(r"(?<![\w./-])(?P<path>(?:docs|tutorials|tests|hessinv_ref)/[\w./-]*\w\.(?:md|py|ipynb|png|toml|json|npz))\b")
_MD_NAME = re.compile(r"(?<![\w./-])(?P<name>[\w-]+\.md)\b")
_PRIVATE = re.compile(r"\bmath\.md\b", re.IGNORECASE)

# paths that are outputs of a documented command, not files of the repository
_OUTPUTS = re.compile(r"^(docs/_build/|docs/_static/bench_[\w]+\.png$)")


def _is_relative(target):
    return not re.match(r"^(?:[a-z][a-z0-9+.-]*:|#|/|mailto:)", target, re.IGNORECASE)


def _site_dir(path):
    """The folder a page sits in inside the built site (tutorials are copied
    into ``docs/tutorials/``, exercises into ``docs/exercises/``)."""
    rel = path.relative_to(ROOT)
    if rel.parts[0] == "tutorials" and len(rel.parts) == 2:
        return DOCS / "tutorials"
    if rel.parts[:2] == ("tutorials", "exercises") and len(rel.parts) == 3:
        return DOCS / "exercises"
    return path.parent


def _doc_exists(base, target):
    target = target.strip()
    where = (DOCS / target.lstrip("/")) if target.startswith("/") else (base / target)
    if where.resolve().is_relative_to(DOCS / "tutorials"):  # the copies: check the originals
        where = TUTORIALS / where.resolve().relative_to(DOCS / "tutorials")
    if where.resolve().is_relative_to(DOCS / "exercises"):
        where = TUTORIALS / "exercises" / where.resolve().relative_to(DOCS / "exercises")
    return any(where.with_name(where.name + ext).exists() for ext in ("", ".md", ".rst", ".ipynb"))


_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<info>.*?)$.*?^(?P=fence)\s*$", re.MULTILINE | re.DOTALL)
_CODE_INFO = re.compile(r"^\s*(?:[\w+-]*|\{(?:code-cell|code-block|code|testcode|testoutput|doctest|eval-rst)\}.*)$")


def _without_code(text):
    """``text`` with its fenced blocks blanked (line numbers kept): in code,
    ``f(x)[0](y)`` is not a link."""
    def blank(m):
        return "\n" * m.group().count("\n") if _CODE_INFO.match(m["info"]) else m.group()

    return _FENCE.sub(blank, text)


def dead_references(path, text):
    """The references in ``text`` (the contents of ``path``) that point
    at nothing in the repository, as ``(line, reference, why)``."""
    line_of = lambda pos: text.count("\n", 0, pos) + 1  # noqa: E731
    dead = []
    for m in _PRIVATE.finditer(text):
        dead.append((line_of(m.start()), m.group(),
                     "a private note: cite the notation page, docs/theory/notation.md, and its section"))
    prose = _without_code(text) if path.suffix == ".md" else ""  # [x](y) is code in Python
    for m in _LINK.finditer(prose):
        target = m["target"].split("#")[0].split("?")[0]
        if target and _is_relative(target) and not (path.parent / target).exists():
            dead.append((line_of(m.start()), m["target"], f"link target not found from {path.parent.name}/"))
    for m in _ROLE.finditer(text):
        target = (m["a"] or m["b"]).strip()
        if target.startswith(("http:", "https:")):
            continue
        base = _site_dir(path)
        if m["role"] == "doc":
            ok = _doc_exists(base, target)
        else:
            ok = _doc_exists(base, target) or (path.parent / target).exists()
        if not ok:
            dead.append((line_of(m.start()), m.group(), f"{m['role']} target not found"))
    for m in _PATH.finditer(text):
        p = m["path"].rstrip(".")
        if not _OUTPUTS.match(p) and not (ROOT / p).exists():
            dead.append((line_of(m.start()), p, "no such file in the repository"))
    for m in _MD_NAME.finditer(text):
        if m["name"] not in _NAMES and not _PRIVATE.fullmatch(m["name"]):
            dead.append((line_of(m.start()), m["name"], "no file of that name in the repository"))
    return dead


def test_the_sources_are_found():
    kinds = {p.relative_to(ROOT).parts[0] for p in SOURCES}
    assert {"hessinv_ref", "docs", "tutorials", "README.md"} <= kinds
    assert (DOCS / "theory" / "notation.md") in SOURCES


@pytest.mark.parametrize(
    "text, n_dead",
    [
        ("see ``math.md`` §4", 1),
        ("see `Math.MD` §4", 1),
        ("the [notation page](theory/notation.md)", 0),
        ("the [notation page](theory/no_such_page.md#x)", 1),
        ("{doc}`theory <theory/index>` and {doc}`theory/no_such`", 1),
        ("see tests/test_docs_citations.py and tests/test_no_such_file.py", 1),
        ("notation.md and no_such_note.md", 1),
        ("[web](https://example.org/math) and [here](#notation)", 0),
    ],
)
def test_the_detector(text, n_dead):
    """The scan finds what it must (so the real scan can fail) and no more."""
    assert len(dead_references(DOCS / "index.md", text)) == n_dead


@pytest.mark.parametrize("path", SOURCES, ids=[p.relative_to(ROOT).as_posix() for p in SOURCES])
def test_no_dead_reference(path):
    dead = dead_references(path, path.read_text(encoding="utf-8"))
    assert not dead, f"{path.relative_to(ROOT)}: " + "; ".join(
        f"line {line}: {ref!r} ({why})" for line, ref, why in dead
    )


# The tests are read beside the docs too, so they may not cite the private
# note either; the dead-link check is not run on them, since tests name
# scratch files (``homework.md``) that exist only while they run.  This file
# names the forbidden citation itself, so it is left out.
TEST_SOURCES = [p for p in sorted((ROOT / "tests").rglob("*.py")) if p.name != Path(__file__).name]


@pytest.mark.parametrize("path", TEST_SOURCES, ids=[p.relative_to(ROOT).as_posix() for p in TEST_SOURCES])
def test_tests_do_not_cite_the_private_note(path):
    lines = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if "math.md" in line]
    assert not lines, f"{path.relative_to(ROOT)}: cites math.md, a file we do not ship, on lines {lines}"

