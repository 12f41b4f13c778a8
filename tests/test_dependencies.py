"""Every third-party module the package imports is covered by its declared dependencies.

Defect (issue #8): ``scipy`` was imported (significance statistics) but not declared, so after ``pip install .``
``pivotal optimize`` failed with ModuleNotFoundError. Imports are read with ``ast`` from every file under
``src/pivotal``; import names map to distributions with ``importlib.metadata.packages_distributions()``.
Modules of optional extras must be declared in that extra and imported only inside functions, so the base install
still imports every module.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "pivotal"
# import name -> the extra that provides it (pip install pivotal[extra])
OPTIONAL = {"ray": "cluster", "smartmoneyconcepts": "compare", "backtesting": "compare", "vectorbt": "compare"}
# optional modules in no extra: imported inside a function, in try/except ImportError with a "pip install" hint
GUARDED = {"cmaes"}  # Optuna's CMA-ES sampler (--sampler cmaes)


def _name(requirement: str) -> str:
    """Normalised distribution name of a requirement string ('psycopg[binary]>=3.1' -> 'psycopg')."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0]).lower()


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(top-level module, imported at module level) for every absolute import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.Try)
            if isinstance(child, ast.Import):
                found.extend((alias.name.split(".")[0], top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.module.split(".")[0], top))
            visit(child, inner)

    visit(tree, True)
    return found


def third_party_imports(root: Path) -> dict[str, dict[str, bool]]:
    """module -> {file: imported at module level} for every non-stdlib, non-pivotal import under ``root``."""
    out: dict[str, dict[str, bool]] = {}
    for path in sorted(root.rglob("*.py")):
        for module, top in _imports(path):
            if module in sys.stdlib_module_names or module in ("pivotal", "__future__"):
                continue
            where = out.setdefault(module, {})
            rel = str(path.relative_to(root.parent))
            where[rel] = where.get(rel, False) or top
    return out


def undeclared(root: Path, pyproject: dict) -> list[str]:
    """Problems, one line each: imports no declared dependency provides, optional ones imported at module level."""
    project = pyproject["project"]
    base = {_name(r) for r in project["dependencies"]}
    extras = {extra: {_name(r) for r in reqs} for extra, reqs in project.get("optional-dependencies", {}).items()}
    provided = importlib.metadata.packages_distributions()
    problems = []
    for module, files in sorted(third_party_imports(root).items()):
        dists = {_name(d) for d in provided.get(module, [])}
        if module in OPTIONAL:
            if not dists & extras.get(OPTIONAL[module], set()) and _name(module) not in extras.get(OPTIONAL[module], set()):
                problems.append(f"{module}: not declared in the [{OPTIONAL[module]}] extra")
            at_top = sorted(f for f, top in files.items() if top)
            if at_top:
                problems.append(f"{module} (optional, [{OPTIONAL[module]}]) imported at module level in {', '.join(at_top)}")
            continue
        if module in GUARDED:
            at_top = sorted(f for f, top in files.items() if top)
            if at_top:
                problems.append(f"{module} (optional) imported at module level in {', '.join(at_top)}")
            continue
        if not dists:
            problems.append(f"{module}: no installed distribution provides it (imported in {', '.join(sorted(files))})")
        elif not dists & base:
            problems.append(f"{module} (distribution {', '.join(sorted(dists))}) is imported in {', '.join(sorted(files))} "
                            f"but not in [project].dependencies")  # fmt: skip
    return problems


def test_every_imported_third_party_module_is_a_declared_dependency() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert undeclared(SRC, pyproject) == []


def test_the_check_finds_an_undeclared_import(tmp_path: Path) -> None:
    pkg = tmp_path / "pivotal"
    pkg.mkdir()
    (pkg / "a.py").write_text("import json\nimport numpy as np\nfrom scipy import stats\nfrom pivotal.core import x\n")
    (pkg / "b.py").write_text("def f():\n    import ray\n    return ray\n")
    (pkg / "c.py").write_text("import vectorbt\n")
    pyproject = {
        "project": {"dependencies": ["numpy>=1.26"], "optional-dependencies": {"cluster": ["ray[default]>=2.9"], "compare": []}}
    }
    problems = undeclared(pkg, pyproject)
    assert any(p.startswith("scipy (distribution scipy) is imported in pivotal/a.py") for p in problems)
    assert "vectorbt (optional, [compare]) imported at module level in pivotal/c.py" in problems
    assert "vectorbt: not declared in the [compare] extra" in problems
    assert not any(p.startswith(("numpy", "json", "ray")) for p in problems)
