"""MkDocs hook: every public name of jaxbp is on an API page, with a docstring.

``mkdocs build --strict`` (``make docs``) fails on the warnings this logs: a name in
``jaxbp.__all__`` that no page documents (its subpackage's ``:::`` directive, or its
own), or that has no docstring for mkdocstrings to show.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import griffe

log = logging.getLogger("mkdocs.hooks.api")
UNDOCUMENTED_OK = {"__version__"}


def on_post_build(config, **_):
    pages = Path(config["docs_dir"], "api")
    directives = set()
    for page in pages.glob("*.md"):
        directives |= set(re.findall(r"^::: ([\w.]+)", page.read_text(), re.M))
    package = griffe.load("jaxbp", search_paths=[str(Path(config["config_file_path"]).parent)])
    public = package.members["__all__"].value
    names = [str(n).strip("'\"") for n in public.elements]
    for name in names:
        if name in UNDOCUMENTED_OK:
            continue
        where = [d for d in directives if d == f"jaxbp.{name}" or _exports(package, d, name)]
        if not where:
            log.warning(f"jaxbp.{name} is public but on no API page (docs/api/*.md)")
        obj = package[name]
        if not (obj.docstring and obj.docstring.value.strip()):
            log.warning(f"jaxbp.{name} is public but has no docstring")


def _exports(package, directive: str, name: str) -> bool:
    """Whether the page directive ``::: jaxbp.sub`` documents ``name`` (in sub's __all__)."""
    parts = directive.split(".")
    if len(parts) != 2 or parts[1] not in package.members:
        return False
    sub = package.members[parts[1]]
    exported = sub.members.get("__all__")
    return exported is not None and name in {str(n).strip("'\"") for n in exported.value.elements}
