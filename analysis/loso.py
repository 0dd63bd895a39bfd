"""Leave-one-set-out validation: how well the GPU model's shared factors carry to a set they were not set on.

A set's MAPE with the shipped spec is a fit quality when the spec's factors were chosen with
that set in view (`role: calibration` in `analysis/measured/sets.yaml`). Generalisation is
what the same model reaches on data it has not seen. The manifest's `loso:` block names the
factors several specs share (e.g. the K-loop overhead of the NVIDIA tile model) with a grid
each, and the sets they apply to. For every such set S, the factors are set again by a
coordinate search (`analysis.crosscheck.coordinate_search`) that minimises the mean MAPE of
the *other* sets only, each on its own spec; S is then cross-checked with those values. The
report gives S's fit MAPE (shipped spec) beside its leave-one-set-out MAPE and the values the
search chose. Factors that only one spec has (a GPU's own sustained clock) stay as shipped:
with one set per GPU they cannot be set without that set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from analysis.crosscheck import ValidationSet, coordinate_search, crosscheck, load_sets
from analysis.importers import load_measured
from simulator.errors import SparsimInputError
from simulator.spec import apply_overrides, arch_from_dict, read_yaml


@dataclass(frozen=True)
class LosoResult:
    set: str
    fit_mape_pct: float
    loso_mape_pct: float
    values: dict[str, float]


def _loso_config(manifest: Path, names: set[str]) -> tuple[list[str], dict[str, list[float]]]:
    data = read_yaml(manifest, "validation manifest") or {}
    block = data.get("loso")
    if not block:
        return [], {}
    try:
        chosen = [str(n) for n in block["sets"]]
        grids = {str(k): [float(v) for v in vs] for k, vs in block["fields"].items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        raise SparsimInputError("loso needs 'sets' (set names) and 'fields' (dotted field: [values])",
                                path=manifest, field="loso") from None
    unknown = [n for n in chosen if n not in names]
    if unknown or len(chosen) < 2 or not grids:
        raise SparsimInputError(f"loso.sets must name at least two sets of the manifest (unknown: {unknown})",
                                path=manifest, field="loso.sets")
    return chosen, grids


def _shipped_value(spec: dict, dotted: str, grid: list[float]) -> float:
    node = spec
    for key in dotted.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return float(node) if isinstance(node, (int, float)) else grid[0]


def leave_one_set_out(manifest: str | Path) -> list[LosoResult]:
    """For each set in the manifest's `loso.sets`: fit MAPE and MAPE with the shared factors set without it."""
    manifest = Path(manifest)
    sets = {vs.name: vs for vs in load_sets(manifest)}
    chosen, grids = _loso_config(manifest, set(sets))
    present = [sets[n] for n in chosen if sets[n].measured.exists()]
    if len(present) < 2:
        return []
    specs = {vs.name: read_yaml(vs.arch, "arch spec") for vs in present}
    data = {vs.name: load_measured(vs.measured, default_dtype=vs.dtype) for vs in present}

    def mape(vs: ValidationSet, values: dict[str, float]) -> float:
        arch = arch_from_dict(apply_overrides(specs[vs.name], values, path=vs.arch), path=vs.arch)
        return crosscheck(arch, data[vs.name], vs.timing).mape_pct

    out = []
    for left in present:
        others = [vs for vs in present if vs is not left]
        start = {f: _shipped_value(specs[others[0].name], f, g) for f, g in grids.items()}
        values, _ = coordinate_search(lambda v: sum(mape(vs, v) for vs in others) / len(others), start, grids)
        out.append(LosoResult(left.name, mape(left, {}), mape(left, values), values))
    return out


def markdown(results: list[LosoResult]) -> str:
    if not results:
        return ""
    lines = ["#### Leave-one-set-out (shared factors set without the set)", "",
             "| set | MAPE, shipped spec (fit) | MAPE, factors set on the other sets | values chosen |",
             "|---|---|---|---|"]
    for r in results:
        chosen = ", ".join(f"`{k.split('.')[-1]}` {v:g}" for k, v in r.values.items())
        lines.append(f"| {r.set} | {r.fit_mape_pct:.1f}% | {r.loso_mape_pct:.1f}% | {chosen} |")
    return "\n".join(lines) + "\n"


__all__ = ["LosoResult", "leave_one_set_out", "markdown"]
