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
# No napoleon: the docstrings are plain reST with no Google/NumPy sections, and napoleon
# would read an attribute comment such as "#: RTMP 5.2.5: versions exchanged" as a type.

html_theme = "alabaster"
html_title = "rtmp: RTMP in pure Python"

# Every cross-reference must resolve (-n with -W in tox -e docs): the docstrings say
# :class:`CommandError` or :class:`rtmp.TimeoutError`, the names a user imports, while the
# reference documents each class once, where it is defined (rtmp.errors.CommandError).
# _resolve_short_names maps such a name to the one documented object it can mean; what
# remains unresolved is the standard library (no network at build time, so no intersphinx),
# private helpers and type aliases, ignored below.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(os|io|enum|socket|ssl|logging|collections\.abc|pathlib|argparse|_thread|typing"
               r"|dataclasses|threading|datetime|secrets|struct)(\..*)?"),
    (r"py:.*", r"(.*\.)?_\w+"),  # private helpers (rtmp.vod._Transport, _Syncer, ...)
    (r"py:class", r"CheckFunction|Progress|PathOrFile"),  # type aliases, not classes
]


def _resolve_short_names(app, env, node, contnode):  # type: ignore[no-untyped-def]
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"]
    if target.startswith("rtmp."):
        target = target[len("rtmp."):]
    domain = env.get_domain("py")
    matches = [name for name in domain.objects
               if name.startswith("rtmp.") and name.endswith("." + target)]
    module = node.get("py:module") or ""
    if len(matches) > 1:  # prefer the object of the module the docstring is in
        matches = [m for m in matches if m.startswith(module + ".")] or matches
    if len(matches) != 1:
        return None
    return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], matches[0],
                               node, contnode)


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("missing-reference", _resolve_short_names)
