"""The domain stays pure: it imports only the standard library, attrs and cronsim."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import hub_scheduler.domain

ALLOWED_THIRD_PARTY = {"attrs", "cronsim"}


def test_domain_imports_only_stdlib_attrs_and_cronsim() -> None:
    """Every import in domain/ is stdlib, attrs, cronsim or the domain itself."""
    domain_dir = Path(hub_scheduler.domain.__file__).parent
    offenders = []
    for path in sorted(domain_dir.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                inside = name.startswith("hub_scheduler.domain")
                if not (inside or top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY):
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
