"""Imports point one way: simulator <- workloads <- analysis, and no package imports another's private names.

The simulator package is the bottom layer (specs, traces, engines, the system and LLM runners),
workloads builds traces on it, analysis explores designs with both. A module may import its own
layer or a lower one; importing an upper layer (also by string, through `importlib`) couples the
core to its clients and fails here, naming the file and line. `__main__.py` and code under
`if __name__ == "__main__":` are entry scripts, the top of every stack, and are not checked.
Subcommands reach the CLI through the `sparsim.commands` entry points in pyproject.toml.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import ROOT

LAYERS = {"simulator": 0, "workloads": 1, "analysis": 2}
MODULE_NAME = re.compile(r"(?:%s)(?:\.\w+)+" % "|".join(LAYERS))   # "analysis.cli_sweep" in a list of names


def _is_main_guard(node: ast.AST) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in node.test.comparators))


def _imports(tree: ast.AST):
    """(line, module, names) of every import in `tree` and every string that is a layered module's dotted
    name (what `importlib.import_module` would be given); docstrings and entry-script code skipped."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if _is_main_guard(node):
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring may name any module
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_NAME.fullmatch(node.value):
            yield node.lineno, node.value, []  # a module named by string, to be imported later
        stack.extend(ast.iter_child_nodes(node))


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def violations(root: Path) -> list[str]:
    """Every reversed or private cross-package import under `root`'s layered packages."""
    found = []
    for package, level in LAYERS.items():
        for path in sorted((root / package).rglob("*.py")):
            if path.name == "__main__.py":
                continue
            where = path.relative_to(root).as_posix()
            for line, module, names in _imports(ast.parse(path.read_text(encoding="utf-8"), filename=where)):
                top = module.split(".")[0]
                if top not in LAYERS or top == package:
                    continue
                if LAYERS[top] > level:
                    found.append(f"{where}:{line}: {package} (layer {level}) imports {module} (layer {LAYERS[top]}, "
                                 "above it)")
                hidden = [p for p in module.split(".")[1:] + names if _private(p)]
                if hidden:
                    found.append(f"{where}:{line}: private {', '.join(hidden)} of {module} imported from {package}")
    return found


def test_imports_point_down_and_stay_public():
    problems = violations(ROOT)
    assert not problems, ("imports against the layering (simulator <- workloads <- analysis; no private names "
                          "across packages):\n" + "\n".join(problems))


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    for package in LAYERS:
        (tmp_path / package).mkdir(exist_ok=True)
    return tmp_path


def test_a_reversed_import_fails(tmp_path):
    root = _tree(tmp_path, {"simulator/bad.py": "import math\nfrom workloads.extract import hf_config\n",
                            "workloads/bad.py": "def f():\n    import analysis.sweep\n",
                            "simulator/by_name.py": "COMMANDS = ('simulator.cli_list',\n            'analysis.cli_sweep')\n"})
    found = violations(root)
    assert any(f.startswith("simulator/bad.py:2: simulator (layer 0) imports workloads.extract") for f in found)
    assert any(f.startswith("workloads/bad.py:2: workloads (layer 1) imports analysis.sweep") for f in found)
    assert any(f.startswith("simulator/by_name.py:2:") for f in found)
    assert len(found) == 3


def test_a_private_cross_package_import_fails(tmp_path):
    root = _tree(tmp_path, {"analysis/a.py": "from simulator.spec import Arch, _compute_model\n",
                            "analysis/b.py": "from simulator._hidden import thing\n",
                            "simulator/own.py": "from simulator.spec import _compute_model\n"})
    found = violations(root)
    assert found == ["analysis/a.py:1: private _compute_model of simulator.spec imported from analysis",
                     "analysis/b.py:1: private _hidden of simulator._hidden imported from analysis"]


def test_downward_imports_and_entry_scripts_pass(tmp_path):
    root = _tree(tmp_path, {"analysis/ok.py": "from simulator.spec import Arch\nimport workloads.cli\n",
                            "simulator/cli.py": "if __name__ == '__main__':\n    from analysis import app\n",
                            "simulator/__main__.py": "from analysis import app\n"})
    assert violations(root) == []


def test_every_command_module_is_declared():
    """A module that adds commands to `app` is reached only through its `sparsim.commands` entry point."""
    from simulator.cli_commands import PYPROJECT, _from_pyproject
    declared = set(_from_pyproject(PYPROJECT) or [])
    registering = {path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
                   for package in LAYERS for path in (ROOT / package).rglob("*.py")
                   if any(mark in path.read_text(encoding="utf-8") for mark in ("@app.command", "app.add_typer"))}
    registering.discard("simulator.cli")   # the app itself (`simulate`)
    assert registering <= declared, f"declare in pyproject.toml [project.entry-points.\"sparsim.commands\"]: " \
                                    f"{sorted(registering - declared)}"
    assert declared <= registering, f"declared but registers no command: {sorted(declared - registering)}"
