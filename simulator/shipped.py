"""Files that ship with sparsim (arch specs, traces, HF configs, sweep specs, system specs), by name.

The wheel installs `arch_configs/`, `workloads/` and `analysis/` beside `simulator/` in
site-packages, exactly as they sit in the source checkout, so one rule finds them in both:
they live next to this package's parent folder. A name such as `edge_npu_32x32_os` or
`resnet50` resolves to the shipped file only when no file of that name exists in the
working directory, so a user's own file always wins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Kind:
    """One family of shipped files: where it lives, which suffixes count, and the CLI words for it."""
    folder: str
    suffixes: tuple[str, ...]
    noun: str


KINDS: dict[str, Kind] = {
    "specs": Kind("arch_configs", (".yaml", ".cfg"), "arch spec"),
    "systems": Kind("arch_configs/systems", (".yaml",), "system spec"),
    "traces": Kind("workloads/traces", (".yaml", ".json", ".csv"), "trace"),
    "models": Kind("workloads/hf_configs", (".json",), "HF config"),
    "sweeps": Kind("analysis/sweeps", (".yaml",), "sweep spec"),
    "stacks": Kind("arch_configs/serving_stacks", (".yaml",), "serving-stack profile"),
}


def folder(kind: str) -> Path:
    """The shipped folder of `kind` (may not exist in a stripped install)."""
    return ROOT / KINDS[kind].folder


def names(kind: str) -> list[str]:
    """Sorted names (file stems) of the shipped files of `kind`."""
    return sorted(p.stem for p in _files(kind))


def _files(kind: str) -> list[Path]:
    k = KINDS[kind]
    d = folder(kind)
    return [p for p in d.iterdir() if p.is_file() and p.suffix in k.suffixes] if d.is_dir() else []


def find(kind: str, name: str) -> Path | None:
    """The shipped file called `name` (with or without its suffix), or None."""
    suffix = Path(name).suffix if Path(name).suffix in KINDS[kind].suffixes else ""
    stem = Path(name).stem if suffix else name
    for p in _files(kind):
        if p.stem == stem and suffix in ("", p.suffix):   # `x.cfg` never finds `x.yaml`
            return p
    return None


def resolve(text: str | Path, kind: str) -> Path:
    """`text` as given when that file exists; else the shipped file of that bare name; else `text` unchanged.

    Only a bare name (no folder part) is looked up, so a mistyped path is still reported as
    the path the user typed.
    """
    path = Path(os.path.expanduser(str(text)))   # '~unknown_user/x' stays as typed (Path.expanduser raises)
    if path.exists() or len(path.parts) != 1:
        return path
    return find(kind, str(path)) or path


def not_found_hint(kind: str, text: str | Path) -> str:
    """'did you mean X?' or where to look, for a file of `kind` that does not exist."""
    from simulator.errors import nearest
    guess = nearest(Path(text).stem, names(kind))
    head = f"did you mean '{guess}'? " if guess else ""
    return head + f"give a path or a shipped name (sparsim list {kind if kind != 'systems' else 'specs'})"


def describe(path: Path) -> str:
    """The first sentence of a shipped file's leading comment or description, for `sparsim list`."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    if path.suffix == ".json":
        import json
        try:
            data = json.loads(text)
        except ValueError:
            return ""
        arch = (data.get("architectures") or [data.get("model_type", "")])[0]
        return f"{arch}, {data.get('num_hidden_layers', '?')} layers, hidden {data.get('hidden_size', '?')}"
    comment = []
    for line in text.splitlines()[:40]:
        s = line.strip()
        if s.startswith("#") and not s.startswith("#!"):
            comment.append(s.lstrip("#").strip())
        elif s.startswith("description:"):
            return _first_sentence(s.partition(":")[2].strip().strip("'\""))
        elif comment:
            break
    return _first_sentence(" ".join(comment))


def _first_sentence(text: str, limit: int = 100) -> str:
    text = text.split(". ", 1)[0]
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def listing(kind: str) -> list[tuple[str, str, Path]]:
    """(name, one-line description, path) of every shipped file of `kind`, by name."""
    return [(p.stem, describe(p), p) for p in sorted(_files(kind), key=lambda p: p.stem)]
