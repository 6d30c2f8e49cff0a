"""Layers point down: ground (core) -> features -> training -> monitoring -> serving -> telcoml.

Checked from the imports themselves, and by what a BentoML worker loads."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Each package and the packages it may import (its own layer and those below).
LAYERS = ["core", "features", "training", "monitoring", "serving", "telcoml"]


def _imports(path: Path) -> set[str]:
    """Project packages a module imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
    return found & set(LAYERS)


def test_no_package_imports_a_higher_layer():
    upward = []
    for rank, package in enumerate(LAYERS):
        for path in sorted((ROOT / package).rglob("*.py")):
            for imported in _imports(path):
                if LAYERS.index(imported) > rank:
                    upward.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert not upward, "imports running up a layer:\n" + "\n".join(upward)


def test_the_service_loads_neither_optuna_nor_matplotlib():
    """A BentoML worker imports the service only: tuning and plotting stay out of its memory."""
    code = (
        "import sys, serving.service; "
        "print(','.join(m for m in ('optuna', 'matplotlib', 'shap', 'evidently', 'typer') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "", f"serving.service loaded: {result.stdout.strip()}"
