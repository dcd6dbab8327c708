"""Sphinx configuration: the API reference, generated from the docstrings (``tox -e docs``)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "rtmp"
author = "the rtmp authors"
copyright = "the rtmp authors, GPL-3.0-or-later"  # noqa: A001 - Sphinx's name

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build"]
root_doc = "index"

autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
    "member-order": "bysource",
}
autodoc_typehints = "description"
autodoc_class_signature = "separated"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# Type names in annotations that Sphinx cannot resolve to a page are not worth a warning;
# references written in the docstrings (:class:`Client`) are checked.
nitpicky = False

html_theme = "alabaster"
html_title = "rtmp: RTMP in pure Python"
