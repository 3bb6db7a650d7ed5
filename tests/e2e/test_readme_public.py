"""The README points only inside the repository and teaches only the public API."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
TEXT = (ROOT / "README.md").read_text()
CODE = re.findall(r"```py(?:thon)?\n(.*?)```", TEXT, flags=re.DOTALL)
PUBLIC = {"hub_scheduler", "hub_scheduler.testing", "hub_scheduler.taskiq"}


def test_every_file_the_readme_names_is_in_the_repository() -> None:
    """No ``../`` paths; every file or folder named like ``tests/...`` exists here."""
    named = re.findall(r"`(?:python )?((?:\.\./|\./|tests/|bench/|src/|\.ci/)[^` ]*)", TEXT)
    outside = [n for n in named if not (ROOT / n).resolve().is_relative_to(ROOT)]
    missing = [n for n in named if not (ROOT / n).exists()]
    assert (outside, missing, "../" in TEXT) == ([], [], False)


def test_the_examples_import_only_public_names() -> None:
    """Code imports come from `hub_scheduler`, `hub_scheduler.testing` or `hub_scheduler.taskiq`,
    and exist there."""
    imported: list[tuple[str, str]] = []
    for block in CODE:
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hub_sch"):
                imported += [(node.module or "", alias.name) for alias in node.names]
    assert [(m, n) for m, n in imported if m not in PUBLIC] == []
    assert [(m, n) for m, n in imported if not hasattr(importlib.import_module(m), n)] == []
    assert ("hub_scheduler", "create_app") in imported  # the admin API example is covered


def test_the_prose_names_only_public_modules() -> None:
    """Dotted ``hub_scheduler.x`` names in the text that are modules are public ones (others
    are logger or entry point group names)."""
    dotted = set(re.findall(r"\bhub_scheduler(?:\.[a-z_]+)+", TEXT)) - PUBLIC
    assert {name for name in dotted if _is_module(name)} == set()


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent is not a package
        return False
