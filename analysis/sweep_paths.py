"""Dotted paths into an arch spec (`memory.sram.capacity_kib`): which exist (for any compute kind
a sweep may select), reading and setting them, applying a design point to the base arch, and
the field-level schema check of one such arch."""

from __future__ import annotations

import copy
import typing
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from simulator.errors import from_validation_error


def _strip_optional(ann):
    origin = typing.get_origin(ann)
    if origin in (Union, getattr(__import__("types"), "UnionType", Union)):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return _strip_optional(args[0])
        return args
    return ann


def _compute_models(kinds: list[str]) -> list[type[BaseModel]]:
    from simulator.engines import ENGINE_KINDS, load_engine
    models = []
    for k in kinds:
        if k in ENGINE_KINDS:
            try:
                models.append(load_engine(k).ComputeSpec)
            except ImportError:
                pass
    return models


def path_candidates(base_raw: dict, compute_kinds: list[str]) -> list[str]:
    """Every dotted path a parameter could name (for 'did you mean' hints)."""
    from simulator.spec import Arch, MemoryLevel

    out: list[str] = []

    def walk_model(model, prefix):
        for fname, finfo in model.model_fields.items():
            p = f"{prefix}.{fname}" if prefix else fname
            out.append(p)
            ann = _strip_optional(finfo.annotation)
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk_model(ann, p)

    for fname in Arch.model_fields:
        if fname == "compute":
            for m in _compute_models(compute_kinds):
                walk_model(m, "compute")
        elif fname == "memory":
            for lvl in (base_raw.get("memory") or {}):
                out.append(f"memory.{lvl}")
                walk_model(MemoryLevel, f"memory.{lvl}")
        else:
            out.append(fname)
            ann = _strip_optional(Arch.model_fields[fname].annotation)
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk_model(ann, fname)

    def walk_raw(node, prefix):
        if isinstance(node, dict):
            for k, v in node.items():
                p = f"{prefix}.{k}" if prefix else str(k)
                out.append(p)
                walk_raw(v, p)
    walk_raw(base_raw, "")
    return list(dict.fromkeys(out))


def check_path(path: str, base_raw: dict, compute_kinds: list[str]) -> bool:
    """True when `path` names a field of the arch (set in the base spec or a valid model field)."""
    from simulator.spec import Arch, MemoryLevel

    keys = path.split(".")
    if keys[0] not in Arch.model_fields:
        return False
    if keys[0] == "compute":
        models: list = _compute_models(compute_kinds)
        rest = keys[1:]
    elif keys[0] == "memory":
        if len(keys) < 2 or keys[1] not in (base_raw.get("memory") or {}):
            return False
        models, rest = [MemoryLevel], keys[2:]
    else:
        ann = _strip_optional(Arch.model_fields[keys[0]].annotation)
        if not keys[1:]:
            return True
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return False
        models, rest = [ann], keys[1:]
    if not rest:
        return True
    return any(_path_in_model(m, rest) for m in models)


def _path_in_model(model, keys: list[str]) -> bool:
    key, rest = keys[0], keys[1:]
    if key not in model.model_fields:
        return False
    if not rest:
        return True
    ann = _strip_optional(model.model_fields[key].annotation)
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return _path_in_model(ann, rest)
    origin = typing.get_origin(ann)
    return origin is dict and len(rest) == 1  # e.g. energy.mac_pj.8, memory.sram.formats.weights


def get_path(raw: dict, path: str):
    node = raw
    for k in path.split("."):
        if not isinstance(node, dict):
            raise KeyError(path)
        if k in node:
            node = node[k]
        elif k.isdigit() and int(k) in node:
            node = node[int(k)]
        else:
            raise KeyError(path)
    return node


def set_path(raw: dict, path: str, value) -> None:
    """Set a dotted path in place, creating missing sections (the arch model decides validity)."""
    keys = path.split(".")
    node = raw
    for k in keys[:-1]:
        nxt = node.get(k)
        if not isinstance(nxt, dict):
            nxt = {}
            node[k] = nxt
        node = nxt
    leaf = keys[-1]
    node[int(leaf) if leaf.isdigit() and any(isinstance(x, int) for x in node) else leaf] = value


def apply_point(base_raw: dict, overrides: dict[str, Any]) -> dict:
    out = copy.deepcopy(base_raw)
    for path, value in overrides.items():
        set_path(out, path, copy.deepcopy(value))
    return out


def schema_check(raw: dict, path) -> None:
    """Field-level validation of an arch (no cross-field engine checks, which depend on other parameters)."""
    from simulator.spec import Arch, compute_model
    compute_raw = raw.get("compute")
    if not isinstance(compute_raw, dict):
        return
    model = compute_model(compute_raw.get("kind"), path)
    try:
        compute = model.model_validate(compute_raw)
    except ValidationError as exc:
        raise from_validation_error(exc, path=path, field_prefix="compute") from None
    try:
        Arch.model_validate({**raw, "compute": compute})
    except ValidationError as exc:
        raise from_validation_error(exc, path=path) from None



__all__ = ["check_path", "get_path", "set_path", "apply_point", "path_candidates", "schema_check"]
