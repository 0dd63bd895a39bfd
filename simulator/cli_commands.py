"""Which modules hold `sparsim`'s subcommands: declared in pyproject.toml, not named here.

Each package adds its commands to the main `app` (`simulator.cli`) when its command module is
imported. The modules are declared as entry points of the group `sparsim.commands` in
pyproject.toml, so the simulator package never names the layers above it (workloads,
analysis): adding a command is one module plus one line there. Run from a checkout, the
checkout's own pyproject.toml is read (an editable install's metadata can lag behind it);
installed from a wheel, the distribution's entry-point metadata is.
"""

from __future__ import annotations

from pathlib import Path

GROUP = "sparsim.commands"
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _from_pyproject(path: Path) -> list[str] | None:
    """The group's module names from a checkout's pyproject.toml (None: not sparsim's checkout)."""
    if not path.is_file():
        return None
    import tomllib
    with path.open("rb") as f:
        project = tomllib.load(f).get("project", {})
    if project.get("name") != "sparsim":
        return None
    return [value.split(":")[0] for value in project.get("entry-points", {}).get(GROUP, {}).values()]


def _from_metadata() -> list[str]:
    from importlib.metadata import entry_points
    return [ep.value.split(":")[0] for ep in entry_points(group=GROUP)]


def command_modules() -> list[str]:
    """Module names that register subcommands, in their declared order."""
    declared = _from_pyproject(PYPROJECT)
    return declared if declared is not None else _from_metadata()


def register_commands() -> None:
    """Import every declared command module that is present (each registers on `simulator.cli.app`)."""
    import importlib
    import importlib.util
    for name in command_modules():
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
