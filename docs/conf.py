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
  the theory pages and the tutorials.  Sub-folders such as
  ``tutorials/exercises/`` are not part of the site.
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

exclude_patterns = ["_build", "jupyter_execute", "**.ipynb_checkpoints"]

TUTORIALS_SOURCE = ROOT / "tutorials"  # the notebooks, as written
TUTORIALS_COPY = DOCS / "tutorials"  # their build-time copies (see the docstring)

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
nb_execution_timeout = 300
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

# -- HTML ----------------------------------------------------------------------------

html_theme = "furo"
html_title = f"hessinv_ref {release}"
html_static_path: list[str] = []
html_theme_options = {"navigation_with_keys": True}


# -- checks -----------------------------------------------------------------------


def _check_api_page(app):
    """Warn (an error under -W) when a name in ``hessinv_ref.__all__`` is
    missing from the quick index at the top of ``api.md``."""
    from sphinx.util import logging

    text = (DOCS / "api.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\s+~[\w.]+\.(\w+)\s*$", text, flags=re.MULTILINE))
    missing = sorted(set(hessinv_ref.__all__) - listed)
    if missing:
        logging.getLogger(__name__).warning(
            "docs/api.md: names exported by hessinv_ref are missing from the "
            "quick index: %s", ", ".join(missing)
        )


def _copy_tutorials(app, config):
    """Mirror ``tutorials/NN_*.md`` into ``docs/tutorials/`` (read-only copies).

    A copy is rewritten only when its original changed, so incremental builds
    stay incremental; copies whose original is gone are removed.
    """
    originals = {p.name: p for p in TUTORIALS_SOURCE.glob("[0-9][0-9]_*.md")}
    TUTORIALS_COPY.mkdir(exist_ok=True)
    for copy in TUTORIALS_COPY.glob("*.md"):
        if copy.name not in originals:
            copy.unlink()
    for name, original in originals.items():
        copy, text = TUTORIALS_COPY / name, original.read_bytes()
        if copy.exists() and copy.read_bytes() == text:
            continue
        copy.unlink(missing_ok=True)
        copy.write_bytes(text)
        copy.chmod(0o444)


def setup(app):
    app.connect("config-inited", _copy_tutorials)
    app.connect("builder-inited", _check_api_page)
