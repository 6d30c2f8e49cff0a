"""The Bento image installs the runtime lock: the main dependencies, every third-party package the
packaged code imports, and no development tool; pinned to the versions the tests run on."""

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
#: Tools for tests, notebooks, linting and dashboards: none belongs in the serving image.
DEVELOPMENT_TOOLS = {
    "pytest",
    "pytest-xdist",
    "schemathesis",
    "hypothesis",
    "ipykernel",
    "ipython",
    "jupyter-client",
    "jupyter-core",
    "jupyterlab",
    "notebook",
    "nbclient",
    "nbformat",
    "ruff",
    "playwright",
    "optuna-dashboard",
}
TYPE_CHECKING_TESTS = {"TYPE_CHECKING", "typing.TYPE_CHECKING"}
FIRST_PARTY = {"core", "telcoml", "features", "training", "serving", "monitoring"}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", re.M)


def _name(requirement: str) -> str:
    """A distribution's normalised name (PEP 503) from a requirement like ``feast[redis]==0.67.*``."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement.strip()).group()).lower()


def _pins(text: str) -> dict[str, str]:
    return {_name(name): version for name, version in PIN.findall(text)}


def _runtime_nodes(node: ast.AST):
    """``node`` and every node under it except those under ``if TYPE_CHECKING:``, which never run
    (a type checker's import of a package the image leaves out, as ``pyspark`` for an annotation);
    such a block's ``else:`` does run."""
    yield node
    for child in ast.iter_child_nodes(node):
        checking = isinstance(child, ast.If) and ast.unparse(child.test) in TYPE_CHECKING_TESTS
        for runs in child.orelse if checking else [child]:
            yield from _runtime_nodes(runs)


@pytest.fixture(scope="module")
def image_requirements() -> str:
    """The requirements the service's declared image installs, as BentoML read them."""
    from serving.service import TelcomlService

    return TelcomlService.image.python_requirements


def test_the_image_holds_no_development_tool(image_requirements):
    pins = _pins(image_requirements)
    dev_lock = _pins((ROOT / "requirements.lock").read_text())
    assert len(pins) > 50  # the whole closure, not only the direct dependencies
    assert not DEVELOPMENT_TOOLS & set(pins), sorted(DEVELOPMENT_TOOLS & set(pins))
    assert DEVELOPMENT_TOOLS & set(dev_lock)  # the check looks for names that do occur in the dev lock
    # the image runs exactly the versions the tests ran on
    assert {name: dev_lock.get(name) for name in pins} == pins


def test_the_image_holds_the_main_dependencies_and_not_the_dev_extra(image_requirements):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    main = {_name(r) for r in project["dependencies"]}
    pins = _pins(image_requirements)
    assert main <= set(pins), sorted(main - set(pins))
    # what the image asks for directly is the main list (the dev extra comes in only as a dependency)
    direct = {
        _name(block.split("==")[0])
        for block in re.split(r"\n(?=\S)", image_requirements)
        if "# via telcoml (pyproject.toml)" in block or "#   telcoml (pyproject.toml)" in block
    }
    assert direct == main


def test_the_image_holds_every_package_the_packaged_code_imports(image_requirements):
    bentofile = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    packaged, excluded = bentofile["include"], bentofile.get("exclude", [])
    sources = {p for pattern in packaged if pattern.endswith(".py") for p in ROOT.glob(pattern)}
    sources -= {p for pattern in excluded if pattern.endswith(".py") for p in ROOT.glob(pattern)}
    assert ROOT / "serving" / "service.py" in sources
    imported: set[str] = set()
    for source in sources:
        for node in _runtime_nodes(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = imported - FIRST_PARTY - set(sys.stdlib_module_names) - {"__future__"}
    providers = importlib.metadata.packages_distributions()
    pins = _pins(image_requirements)
    missing = {module: providers.get(module) for module in third_party}
    missing = {m: d for m, d in missing.items() if not d or not {_name(x) for x in d} & set(pins)}
    assert not missing, f"imported by the packaged code but not installed in the image: {missing}"


def test_only_type_checking_imports_are_left_out_of_the_scan():
    tree = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pyspark\nelse:\n    import yaml\n"
        "def f():\n    import numpy\n"
    )
    names = {a.name for n in _runtime_nodes(tree) if isinstance(n, ast.Import) for a in n.names}
    assert names == {"yaml", "numpy"}
