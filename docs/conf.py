"""Sphinx configuration for the hessinv_ref documentation.

Build the site (warnings are errors) from the repository root with::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

and run every docstring example and every ``testcode`` block with::

    python -m sphinx -W -b doctest docs docs/_build/doctest

Both need the ``docs`` extra: ``pip install -e ".[docs]"``.

Choices made here, and why
--------------------------
* **Notebooks.** The tutorials are MyST-markdown notebooks in the top-level
  ``tutorials/`` folder, read both by Jupyter (through jupytext) and by
  Sphinx.  Sphinx only reads files inside ``docs/``, so each build starts by
  mirroring the numbered notebooks ``tutorials/NN_*.md`` into
  ``docs/tutorials/`` as read-only copies (ignored by git; edit the originals,
  and read ``docs/tutorials/NN_*.md`` in a warning as ``tutorials/NN_*.md``).
  Copies, not a symbolic link: Sphinx resolves links through symbolic links
  to paths outside ``docs/``, which would break every markdown link between
  the theory pages and the tutorials.
  The exercises ``tutorials/exercises/exNN_*.md`` are mirrored the same way
  into ``docs/exercises/`` (never their ``solutions/``), with one change:
  their links into the repository's ``docs/`` folder (``../../docs/X``) are
  rewritten to the site's (``../X``).  Exercise pages are not executed:
  their cells are stubs for the student to fill in.
* **Downloads.** Every tutorial and exercise page starts with download
  links: its MyST-markdown original and a Jupyter notebook (``.ipynb``)
  made from it at build time by myst-nb's own MyST reader (the conversion
  jupytext makes), without outputs.  In an exercise's notebook the grading
  cell names the notebook instead of the ``.md``.  The notebooks are written
  to ``docs/tutorials/_notebooks/`` and ``docs/exercises/_notebooks/``
  (ignored by git and by Sphinx's source search).
  myst-nb executes the notebooks on every build (``nb_execution_mode =
  "force"``) and a cell that raises fails the build, so the published pages
  can never show stale numbers.  Set ``HESSINV_NB_EXECUTION=cache`` (or
  ``off``) to trade that guarantee for speed while editing prose.
* **Docstrings** are numpydoc-formatted, so the ``numpydoc`` extension renders
  them (not napoleon).
* **MathJax** is served from the build folder (``sphinx-mathjax-offline``
  ships MathJax 3), because the machines that build and read these pages may
  have no route to a CDN.  Without that package the pages fall back to
  Sphinx's default CDN copy, and equations render only online.
* **Intersphinx** to NumPy, SciPy and Python would fetch inventories over the
  network at build time, which CI cannot do.  It is therefore off unless the
  environment variable ``HESSINV_DOCS_INTERSPHINX=1`` is set; no page relies
  on it, so the offline build has no unresolved references.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # the package, even without an editable install

import hessinv_ref  # noqa: E402

# -- project -----------------------------------------------------------------

project = "hessinv_ref"
author = "The hessinv_ref developers"
copyright = "2026, the hessinv_ref developers"
release = hessinv_ref.__version__
version = ".".join(release.split(".")[:2])

# -- extensions ----------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
    "sphinx_design",
]

if importlib.util.find_spec("sphinx-mathjax-offline") is not None:
    # The package's import name really has hyphens; it copies MathJax 3 into
    # _static/mathjax and points mathjax_path at it.
    extensions.append("sphinx-mathjax-offline")

if os.environ.get("HESSINV_DOCS_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "scipy": ("https://docs.scipy.org/doc/scipy", None),
    }

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"

# The theory toctree is numbered, so equations read "(2.4)": equation 4 of
# theory page 2, unambiguous when a page cites another page's equation.
numfig = True
math_numfig = True
numfig_secnum_depth = 1

exclude_patterns = ["_build", "jupyter_execute", "**.ipynb_checkpoints", "**/_notebooks"]

TUTORIALS_SOURCE = ROOT / "tutorials"  # the notebooks, as written
TUTORIALS_COPY = DOCS / "tutorials"  # their build-time copies (see the docstring)
EXERCISES_SOURCE = TUTORIALS_SOURCE / "exercises"
EXERCISES_COPY = DOCS / "exercises"
NOTEBOOKS = "_notebooks"  # sub-folder of each copy folder for the .ipynb downloads

# -- autodoc and numpydoc --------------------------------------------------------

autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc "Parameters" sections carry the types
autosummary_generate = False  # the API page is written by hand, nothing generated
numpydoc_show_class_members = False  # autodoc lists members; no second table
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()

# -- doctest -----------------------------------------------------------------------

doctest_global_setup = """
import numpy as np
np.set_printoptions(precision=6, suppress=True)
"""

# -- MyST and myst-nb -----------------------------------------------------------------

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "substitution"]
myst_substitutions = {"release": release}
myst_heading_anchors = 3
myst_dmath_double_inline = True

nb_execution_mode = os.environ.get("HESSINV_NB_EXECUTION", "force")
nb_execution_excludepatterns = ["exercises/*"]  # stubs that raise NotImplementedError
nb_execution_timeout = 300
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

# -- HTML ----------------------------------------------------------------------------

html_theme = "furo"
html_title = f"hessinv_ref {release}"
html_static_path = ["_static"]
html_css_files = ["hessinv.css"]  # equation numbers beside wide equations; output wraps
html_theme_options = {"navigation_with_keys": True}


# -- checks -----------------------------------------------------------------------


def _check_api_page(app):
    """Warn (an error under -W) when a name in ``hessinv_ref.__all__`` is
    missing from the quick index at the top of ``api/index.md``."""
    from sphinx.util import logging

    text = (DOCS / "api" / "index.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\s+~[\w.]+\.(\w+)\s*$", text, flags=re.MULTILINE))
    missing = sorted(set(hessinv_ref.__all__) - listed)
    if missing:
        logging.getLogger(__name__).warning(
            "docs/api/index.md: names exported by hessinv_ref are missing from the "
            "quick index: %s", ", ".join(missing)
        )


def _write_if_changed(path, data):
    """Write ``data`` (bytes) to a read-only ``path`` unless it already holds
    them, so that incremental builds stay incremental."""
    if path.exists() and path.read_bytes() == data:
        return
    path.unlink(missing_ok=True)
    path.write_bytes(data)
    path.chmod(0o444)


def _notebook(text, name):
    """The ``.ipynb`` (as bytes) of the MyST notebook ``text``, file ``name``.

    myst-nb's reader does the conversion (the one jupytext makes); the
    ``jupytext`` entry of the metadata is dropped, since the notebook is no
    longer paired with a ``.md``.  An exercise's notebook names itself, not
    the ``.md``, wherever the ``.md`` names itself (the grading cell).
    """
    import nbformat
    from myst_nb.core.read import read_myst_markdown_notebook

    stem = name.removesuffix(".md")
    if stem.startswith("ex"):
        text = text.replace(name, stem + ".ipynb")
    nb = read_myst_markdown_notebook(text)
    nb.metadata.pop("jupytext", None)
    return (nbformat.writes(nb) + "\n").encode("utf-8")


def _mirror(originals, folder, transform=None):
    """Read-only copies of ``originals`` (name -> path) in ``folder``, and
    their notebooks in ``folder/_notebooks``; stale copies are removed."""
    books = folder / NOTEBOOKS
    books.mkdir(parents=True, exist_ok=True)
    for stale in list(folder.glob("*.md")) + list(books.glob("*.ipynb")):
        if stale.with_suffix(".md").name not in originals:
            stale.unlink()
    for name, original in originals.items():
        text = original.read_text(encoding="utf-8")
        _write_if_changed(folder / name, (transform(text) if transform else text).encode("utf-8"))
        _write_if_changed(books / (name.removesuffix(".md") + ".ipynb"), _notebook(text, name))


def _copy_tutorials(app, config):
    """Mirror ``tutorials/NN_*.md`` into ``docs/tutorials/`` and
    ``tutorials/exercises/exNN_*.md`` into ``docs/exercises/`` (read-only
    copies, with their notebooks; see the module notes)."""
    _mirror({p.name: p for p in TUTORIALS_SOURCE.glob("[0-9][0-9]_*.md")}, TUTORIALS_COPY)
    _mirror({p.name: p for p in EXERCISES_SOURCE.glob("ex[0-9][0-9]_*.md")}, EXERCISES_COPY,
            transform=lambda text: text.replace("](../../docs/", "](../"))


_DOWNLOAD = """
```{{only}} html
{{download}}`Download this page as a notebook ({stem}.ipynb) <{notebook}>`
or as MyST markdown ({{download}}`{stem}.md <{source}>`), to run it in
Jupyter{extra}.
```
"""


def _add_download_links(app, docname, source):
    """Put the download links of a tutorial or exercise under its title."""
    folder, _, stem = docname.rpartition("/")
    if folder == "tutorials" and stem[:2].isdigit():
        source_path, extra = f"/../tutorials/{stem}.md", " (the `.md` opens as a notebook with jupytext)"
    elif folder == "exercises" and stem.startswith("ex"):
        source_path, extra = f"/../tutorials/exercises/{stem}.md", "; the last cell grades the file it names"
    else:
        return
    links = _DOWNLOAD.format(stem=stem, notebook=f"{NOTEBOOKS}/{stem}.ipynb", source=source_path, extra=extra)
    # after the title: the first line that starts a level-1 heading
    source[0] = re.sub(r"^(# .*)$", lambda m: m.group(1) + "\n" + links, source[0], count=1,
                       flags=re.MULTILINE)


def _skip_namedtuple_fields(app, what, name, obj, skip, options):
    """Leave out the "Alias for field number N" entries that autodoc makes for
    the fields of a ``NamedTuple``: the class's own Attributes section
    documents them, with their shapes."""
    if (obj.__class__.__name__ == "_tuplegetter"
            and (getattr(obj, "__doc__", "") or "").startswith("Alias for field number")):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_namedtuple_fields)
    app.connect("config-inited", _copy_tutorials)
    app.connect("builder-inited", _check_api_page)
    app.connect("source-read", _add_download_links)
