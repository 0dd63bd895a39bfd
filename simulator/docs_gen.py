"""Generate the spec and trace field references (Markdown) and JSON Schemas from the pydantic models.

    python -m simulator.docs_gen          # rewrite docs/spec.md, docs/trace.md, docs/schema/*.json
    python -m simulator.docs_gen --check  # exit 1 if any of them is stale (tests/test_docs_gen.py)

One source of truth: the JSON Schema pydantic derives from the models (with every engine's
`compute:` block as one alternative, selected by `kind`) is written for editors, and the
Markdown tables are rendered from that same schema: every field with its type, default,
unit, allowed values and constraints, and its description. Units come from the field-name
suffix (`clock_mhz` is MHz, `capacity_kib` KiB, ...; `UNITS`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"

# Field-name suffix -> unit (longest suffix wins).
UNITS = {
    "_mhz": "MHz", "_kib": "KiB", "_kib_per_sm": "KiB per SM", "_gib": "GiB", "_bytes_per_cycle": "bytes/cycle",
    "_pj_per_bit": "pJ/bit", "_pj": "pJ", "_mw": "mW", "_w": "W", "_mm2_per_kib": "mm^2/KiB", "_mm2": "mm^2",
    "technology_nm": "nm", "_ns": "ns", "_us": "us", "_bytes": "bytes", "_gb_per_s_per_channel": "GB/s per channel",
    "_flops_per_cycle_per_sm": "FLOP/cycle per SM", "_cycles": "cycles", "_fraction": "fraction (0-1)",
    "probability": "fraction (0-1)", "efficiency": "fraction (0-1)", "density": "fraction (0-1)",
}
CONSTRAINTS = (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"),
               ("minLength", "min length"), ("maxLength", "max length"), ("minItems", "min items"),
               ("maxItems", "max items"), ("pattern", "pattern"))


# ----------------------------------------------------------------------------- schemas

def arch_schema() -> dict:
    """JSON Schema of an arch spec: the Arch model with `compute` as one of the engines' blocks."""
    from simulator.engines import ENGINE_KINDS, load_engine
    from simulator.spec import Arch
    schema = _with_factory_defaults(Arch.model_json_schema(), Arch)
    defs = schema.setdefault("$defs", {})
    options = []
    for kind in ENGINE_KINDS:
        model = load_engine(kind).ComputeSpec
        sub = _with_factory_defaults(model.model_json_schema(), model)
        defs.update(sub.pop("$defs", {}))
        name = f"compute.{kind}"
        sub["title"] = f"compute (kind: {kind})"
        defs[name] = sub
        options.append({"$ref": f"#/$defs/{name}"})
    defs.pop("ComputeSpecBase", None)  # the Python base of the blocks below, not a block itself
    schema["properties"]["compute"] = {"oneOf": options, "title": "Compute",
                                       "description": "the compute engine; `kind` selects which block applies"}
    return _finish(schema, "sparsim arch spec")


def trace_schema() -> dict:
    from simulator.trace import Trace
    return _finish(_with_factory_defaults(Trace.model_json_schema(), Trace), "sparsim trace")


def _models(root) -> dict[str, type]:
    """`root` and every pydantic model reachable through its fields' annotations, by class name."""
    from typing import get_args

    from pydantic import BaseModel
    found: dict[str, type] = {}
    stack = [root]
    while stack:
        model = stack.pop()
        if model.__name__ in found:
            continue
        found[model.__name__] = model
        types = [f.annotation for f in model.model_fields.values()]
        while types:
            t = types.pop()
            types.extend(get_args(t))
            if isinstance(t, type) and issubclass(t, BaseModel):
                stack.append(t)
    return found


def _with_factory_defaults(schema: dict, root) -> dict:
    """Pydantic leaves `default_factory` defaults out of the schema; put them in (lists, mappings)."""
    from pydantic_core import to_jsonable_python
    for name, model in _models(root).items():
        target = schema if model is root else schema.get("$defs", {}).get(name)
        if target is None:
            continue
        for field_name, field in model.model_fields.items():
            prop = target.get("properties", {}).get(field.alias or field_name)
            if prop is not None and field.default_factory is not None and "default" not in prop:
                try:
                    prop["default"] = to_jsonable_python(field.default_factory())
                except Exception:  # a factory that needs arguments or gives an object JSON cannot hold
                    continue
    return schema


def _finish(schema: dict, title: str) -> dict:
    schema["title"] = title
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


# ----------------------------------------------------------------------------- Markdown

def _type(prop: dict) -> str:
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    if "allOf" in prop and len(prop["allOf"]) == 1:
        return _type(prop["allOf"][0])
    for key in ("anyOf", "oneOf"):
        if key in prop:
            return " or ".join(dict.fromkeys(_type(p) for p in prop[key]))
    if "enum" in prop:
        return "string" if all(isinstance(v, str) for v in prop["enum"]) else "value"
    if "const" in prop:
        return f"`{prop['const']}`"
    kind = prop.get("type", "any")
    if kind == "array" and "prefixItems" in prop:
        return "(" + ", ".join(_type(p) for p in prop["prefixItems"]) + ")"
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if kind == "object" and "additionalProperties" in prop and isinstance(prop["additionalProperties"], dict):
        return f"map to {_type(prop['additionalProperties'])}"
    return {"number": "number", "integer": "integer", "string": "string", "boolean": "boolean",
            "null": "null", "object": "mapping"}.get(kind, str(kind))


def _allowed(prop: dict) -> str:
    values = []
    for p in [prop, *prop.get("anyOf", []), *prop.get("oneOf", []), prop.get("items", {}),
              prop.get("additionalProperties") if isinstance(prop.get("additionalProperties"), dict) else {}]:
        if "enum" in p:
            values += p["enum"]
        if "const" in p:
            values.append(p["const"])
    limits = [f"{word} {p[key]}" for p in [prop, *prop.get("anyOf", [])] for key, word in CONSTRAINTS if key in p]
    parts = [", ".join(f"`{v}`" for v in dict.fromkeys(values))] if values else []
    return "; ".join(parts + limits) or ""


def field_unit(name: str) -> str:
    """The unit a field name's suffix names ('clock_mhz' -> 'MHz'), or ''."""
    for suffix in sorted(UNITS, key=len, reverse=True):
        if name.endswith(suffix):
            return UNITS[suffix]
    return ""


def _default(name: str, prop: dict, required: set) -> str:
    if name in required:
        return "**required**"
    if "default" not in prop:
        return "optional"
    if isinstance(prop["default"], dict) and "$ref" in prop:
        return "its fields' defaults"
    value = json.dumps(prop["default"])
    return f"`{value}`" if len(value) <= 40 else f"`{value[:36]}...` (see the schema)"


def _anchor(name: str) -> str:
    return name.lower().replace(".", "").replace(" ", "-")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(title: str, schema: dict) -> list[str]:
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    lines = [f"### {title}", ""]
    if schema.get("description"):
        lines += [_cell(schema["description"]), ""]
    if not props:
        return lines + ["(no fields)", ""]
    lines += ["| field | type | default | unit | allowed | description |", "|---|---|---|---|---|---|"]
    for name, prop in props.items():
        lines.append("| " + " | ".join(_cell(c) for c in (
            f"`{name}`", _type(prop), _default(name, prop, required), field_unit(name), _allowed(prop),
            prop.get("description", ""))) + " |")
    return lines + [""]


def markdown(schema: dict, title: str, intro: str, command: str) -> str:
    lines = [f"# {title}", "", f"<!-- generated by `{command}`; do not edit by hand -->", "", intro, ""]
    lines += _table(schema["title"].removeprefix("sparsim ") + " (top level)", schema)
    for name, sub in sorted(schema.get("$defs", {}).items()):
        lines += _table(name, sub)
    return "\n".join(lines).rstrip() + "\n"


# ----------------------------------------------------------------------------- files

COMMAND = "python -m simulator.docs_gen"
INTROS = {
    "spec": ("Arch spec reference", "Every field of an arch spec YAML (`arch_configs/*.yaml`, `sparsim list specs`). "
             "`compute:` takes one of the `compute.<kind>` blocks, chosen by its `kind`; `memory:` maps level names "
             "to [MemoryLevel](#memorylevel) blocks, innermost first and off-chip DRAM last. "
             "Editors can validate specs with the JSON Schema `docs/schema/arch.schema.json` (e.g. a "
             "`# yaml-language-server: $schema=...` line)."),
    "trace": ("Trace reference", "Every field of a workload trace YAML/JSON (`workloads/traces/*.yaml`, "
              "`sparsim list traces`). An op's `dims` block depends on its `kind`: GEMM dims for `gemm`, conv dims "
              "for `conv2d`, attention dims for `attention_qk`/`attention_pv`, MoE dims for `moe_gemm`, vector "
              "dims for the rest. JSON Schema for editors: `docs/schema/trace.schema.json`."),
}


def outputs() -> dict[Path, str]:
    """Every generated file and its content."""
    files = {}
    for stem, schema in (("spec", arch_schema()), ("trace", trace_schema())):
        title, intro = INTROS[stem]
        files[DOCS / f"{stem}.md"] = markdown(schema, title, intro, COMMAND)
        name = "arch" if stem == "spec" else "trace"
        files[DOCS / "schema" / f"{name}.schema.json"] = json.dumps(schema, indent=1, sort_keys=True) + "\n"
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Regenerate docs/spec.md, docs/trace.md and docs/schema/*.json.")
    ap.add_argument("--check", action="store_true", help="exit 1 if a generated file is missing or stale")
    args = ap.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'} {path}")
    if args.check and stale:
        print(f"regenerate with: {COMMAND}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
