"""Read a SCALE-Sim v3 `.cfg` file as an arch spec, so `--arch scale.cfg` just works.

The file becomes the same mapping the YAML twin `arch_configs/scalesim_32x32_os.yaml` spells
out: a systolic array of ArrayHeight x ArrayWidth PEs with the given Dataflow, one SRAM per
operand (IfmapSramSzkB / FilterSramSzkB / OfmapSramSzkB, SCALE-Sim's kB = 1024 bytes), 8-bit
words (SCALE-Sim fixes the word at one byte), a nominal 1 GHz clock (SCALE-Sim counts cycles
only) and DRAM:
- `InterfaceBandwidth = CALC` (SCALE-Sim's "never stall" mode): every level has unlimited
  bandwidth, so cycles equal SCALE-Sim's stall-free compute cycles.
- `InterfaceBandwidth = USER`: DRAM moves `Bandwidth` words (bytes) per cycle under sparsim's
  own stall model, which is not SCALE-Sim's read-buffer model, so stalls can differ.
`[sparsity] SparsitySupport = true` with `OptimizedMapping = false` is SCALE-Sim's layer-wise N:M
mode (`compute.sparsity.layerwise_nm`), which reads N:M from the topology CSV's last column.
Settings that would change SCALE-Sim's answer but that sparsim does not model (custom SRAM
layouts, Ramulator traces, the optimized sparse mapping) and keys it does not know are named in
one `SparsimWarning`; keys that only affect SCALE-Sim's address traces or reports are ignored.
Source of the key names and units: SCALE-Sim v3 `scalesim/scale_config.py` (scalesim==3.0.0).
"""

from __future__ import annotations

import configparser
import warnings
from pathlib import Path

from simulator.errors import SparsimInputError, SparsimWarning

# Keys that only steer SCALE-Sim's address traces, storage report or bank layout (cycles unchanged).
NO_EFFECT = {
    "general": {"run_name"},
    "architecture_presets": {"ifmapoffset", "filteroffset", "ofmapoffset", "readrequestbuffer",
                             "writerequestbuffer"},
    "layout": {"ifmapsrambankbandwidth", "ifmapsrambanknum", "ifmapsrambankport", "filtersrambankbandwidth",
               "filtersrambanknum", "filtersrambankport"},
    "sparsity": {"sparserep", "randomnumbergeneratorseed", "blocksize"},
}
USED = {
    "architecture_presets": {"arrayheight", "arraywidth", "dataflow", "ifmapsramszkb", "filtersramszkb",
                             "ofmapsramszkb", "bandwidth"},
    "layout": {"ifmapcustomlayout", "filtercustomlayout"},
    "sparsity": {"sparsitysupport", "optimizedmapping"},
    "run_presets": {"interfacebandwidth", "useramulatortrace"},
}


def _parser(path: Path) -> configparser.ConfigParser:
    from simulator.inputs import read_text
    # values are literal numbers and words: no '%(key)s' interpolation (a missing or looping key would raise late)
    cp = configparser.ConfigParser(inline_comment_prefixes=("#", ";"), interpolation=None)
    text = read_text(path, "SCALE-Sim config")
    try:
        cp.read_string(text, source=str(path))
    except configparser.Error as exc:
        line = getattr(exc, "lineno", None)
        raise SparsimInputError(f"not a valid SCALE-Sim .cfg{f' at line {line}' if line else ''}: "
                                f"{type(exc).__name__}", path=path, hint="sections like [architecture_presets] "
                                "holding 'Key = value' lines") from None
    if not cp.has_section("architecture_presets"):
        raise SparsimInputError("no [architecture_presets] section", path=path,
                                hint="a SCALE-Sim config names ArrayHeight, ArrayWidth, Dataflow there")
    return cp


def _number(cp, section: str, key: str, path: Path, kind=int, default=None):
    raw = cp.get(section, key, fallback=None)
    if raw is None or raw.strip() == "":
        if default is not None:
            return default
        raise SparsimInputError("required key is missing", path=path, field=f"{section}.{key}", hint="add it")
    try:
        value = kind(raw.split(",")[0].strip())
    except ValueError:
        raise SparsimInputError(f"'{raw.strip()}' is not a number", path=path, field=f"{section}.{key}") from None
    if value <= 0:
        raise SparsimInputError(f"must be positive (got {value})", path=path, field=f"{section}.{key}")
    return value


def _flag(cp, section: str, key: str) -> bool:
    return cp.get(section, key, fallback="false").strip().lower() == "true"


def _unsupported(cp) -> list[str]:
    """Keys the file sets that sparsim does not model, as 'section.Key=value' strings."""
    out = []
    for section in cp.sections():
        for key, value in cp.items(section):
            known = key in NO_EFFECT.get(section, set()) | USED.get(section, set())
            if section == "network_presets" or not known:
                out.append(f"{section}.{key}")
    for section, key, why in (("layout", "IfmapCustomLayout", "custom layout"),
                              ("layout", "FilterCustomLayout", "custom layout"),
                              ("run_presets", "UseRamulatorTrace", "Ramulator"),
                              ("sparsity", "OptimizedMapping", "optimized sparse mapping")):
        if _flag(cp, section, key):
            out.append(f"{section}.{key}=True ({why} not modelled)")
    return out


def cfg_to_dict(path: str | Path) -> dict:
    """The arch mapping of a SCALE-Sim .cfg (warns once about settings sparsim does not model)."""
    path = Path(path)
    cp = _parser(path)
    sec = "architecture_presets"
    rows, cols = _number(cp, sec, "ArrayHeight", path), _number(cp, sec, "ArrayWidth", path)
    dataflow = cp.get(sec, "Dataflow", fallback="").strip().lower()
    if dataflow not in ("os", "ws", "is"):
        raise SparsimInputError(f"unknown dataflow '{dataflow}'", path=path, field=f"{sec}.Dataflow",
                                hint="one of os, ws, is")
    sram = {name: _number(cp, sec, key, path, float)
            for name, key in (("ifmap", "IfmapSramSzkB"), ("filter", "FilterSramSzkB"), ("ofmap", "OfmapSramSzkB"))}
    mode = cp.get("run_presets", "InterfaceBandwidth", fallback="CALC").strip().upper()
    if mode not in ("CALC", "USER"):
        raise SparsimInputError(f"InterfaceBandwidth '{mode}' is neither CALC nor USER", path=path,
                                field="run_presets.InterfaceBandwidth", hint="use CALC or USER")
    dram = {"kind": "dram", "ideal": True}
    if mode == "USER":
        dram = {"kind": "dram", "bandwidth_bytes_per_cycle": _number(cp, sec, "Bandwidth", path, float)}
    compute = {"kind": "systolic", "rows": rows, "cols": cols, "dataflow": dataflow,
               "precision": {"activations": 8, "weights": 8, "outputs": 8, "accumulator": 32}}
    if _flag(cp, "sparsity", "SparsitySupport"):
        compute["sparsity"] = {"weights": "none", "activations": "none", "layerwise_nm": True}
    unsupported = _unsupported(cp)
    if unsupported:
        warnings.warn(SparsimWarning(f"{path}: SCALE-Sim settings not modelled (ignored): " + ", ".join(unsupported)),
                      stacklevel=2)
    name = cp.get("general", "run_name", fallback="").strip() or path.stem
    return {
        "name": name,
        "description": f"SCALE-Sim config {path.name} ({rows}x{cols} {dataflow}, {mode} bandwidth)",
        "sources": ["SCALE-Sim v3 .cfg (scalesim==3.0.0 scale_config.py key names)"],
        "clock_mhz": 1000,
        "compute": compute,
        "memory": {
            "ifmap_sram": {"kind": "sram", "capacity_kib": sram["ifmap"], "ideal": True, "holds": ["activations"]},
            "filter_sram": {"kind": "sram", "capacity_kib": sram["filter"], "ideal": True, "holds": ["weights"]},
            "ofmap_sram": {"kind": "sram", "capacity_kib": sram["ofmap"], "ideal": True, "holds": ["outputs"]},
            "dram": dram,
        },
    }
