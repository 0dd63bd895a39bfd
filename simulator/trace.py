"""Workload IR: operators, their shapes, precisions and per-operand sparsity, in a versioned file.

A trace is a list of ops. Every op that does multiply-accumulates lowers to one or more
GEMMs `(M x K) @ (K x N)` with a count (`gemm_shapes`), which is all the compute engines
need; the op keeps its own dims so results can be reported in the user's terms.

Operand roles: `activations` is the streamed A operand (M x K), `weights` the B operand
(K x N), `outputs` the result (M x N). For attention ops the B operand is the KV cache
(K^T for `attention_qk`, V for `attention_pv`) and `activations` is Q or the attention
probabilities, so KV-cache pruning is `weights` sparsity and sparse attention is
`activations` (probability) sparsity on `attention_pv`.

Files: YAML or JSON with `schema_version`; SCALE-Sim topology CSVs are imported by
`simulator.scalesim_csv`. A loader rejects what it cannot read with one located error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulator.errors import SparsimInputError, from_validation_error
from simulator.inputs import StrictSpec
from simulator.trace_sparsity import (DENSE, MeasuredStats, OperandSparsity, Precision,  # noqa: F401 (re-exported)
                                      Sparsity)

SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, 2)   # 2 added the training phases; version-1 files load unchanged
TRAINING_PHASES = ("forward", "backward", "optimizer")
OPERANDS = ("activations", "weights", "outputs")


# ----------------------------------------------------------------------------- op dims

class GemmShape(BaseModel):
    """One GEMM (M x K) @ (K x N), executed `count` times independently."""
    model_config = ConfigDict(frozen=True)
    M: int
    N: int
    K: int
    count: int = 1

    @property
    def macs(self) -> int:
        return self.M * self.N * self.K * self.count


class OpDims(StrictSpec):
    """The dims of one op kind: the class owns its MAC count and GEMM lowering (`gemm_shapes`), its
    operand sizes (`operand_elements`) and its cuts over cores (`split_dims`, `shard_sizes`). The
    class variables say what the lowered GEMMs' B side is ("weights"; attention: "kv", the KV
    cache) and whether GEMMs of different M run as one grouped kernel (MoE)."""
    b_operand: ClassVar[str] = "weights"
    grouped: ClassVar[bool] = False


class GemmDims(OpDims):
    # Cutting over cores (simulator.system.sharding): `split_dims` the cuts, default first; `shard_sizes`
    # the dims of each of `parts` pieces, sized by `split(total) -> shares` (None: the op cannot be cut).
    def split_dims(self, parts: int) -> list[str]:
        """Output columns N (each core reads all activations, 1/parts of the weights), output rows M
        (all the weights, 1/parts of the activations), independent GEMMs (batch)."""
        first = "N" if self.N >= parts or self.N >= self.M else "M"
        return [first, "M" if first == "N" else "N"] + (["batch"] if self.batch > 1 else [])

    def shard_sizes(self, dim: str, parts: int, split) -> list[dict] | None:
        return [{dim: s} for s in split(getattr(self, dim))]

    M: int = Field(ge=1, description="output rows (tokens x batch)")
    N: int = Field(ge=1, description="output columns (features)")
    K: int = Field(ge=1, description="reduction length")
    batch: int = Field(default=1, ge=1, description="independent GEMMs of this shape")

    def gemm_shapes(self, kind: str | None = None) -> list[GemmShape]:
        return [GemmShape(M=self.M, N=self.N, K=self.K, count=self.batch)]

    def operand_elements(self, kind: str | None = None) -> dict[str, int]:
        return _gemm_operand_elements(self.gemm_shapes())


class ConvDims(OpDims):
    """A 2-D convolution, NCHW. Output size follows PyTorch (floor) unless `out_h/out_w` are given
    (the SCALE-Sim importer gives them, since SCALE-Sim rounds differently)."""
    # Cutting over cores: as GemmDims.
    def split_dims(self, parts: int) -> list[str]:
        """Filters K (or groups), output rows (each shard reads its input rows plus the filter's
        halo), batch."""
        return ["K", "rows"] + (["batch"] if self.N > 1 else [])

    def shard_sizes(self, dim: str, parts: int, split) -> list[dict] | None:
        if dim == "rows":
            # e output rows need (e - 1) x stride + R padded input rows; the shard keeps the
            # op's padding, so interior shards read 2 x pad rows fewer than their real halo
            sizes = []
            for e in split(self.P):
                h = (e - 1) * self.stride + self.R - 2 * self.pad if e else 0
                if e and h < 1:
                    return None
                sizes.append({"H": h, **({"out_h": e} if self.out_h is not None else {})})
            return sizes
        if dim == "batch":
            return [{"N": s} for s in split(self.N)]
        if self.groups > 1:
            per_c, per_k = self.C // self.groups, self.K // self.groups
            return [{"groups": g, "C": per_c * g, "K": per_k * g} for g in split(self.groups)]
        return [{"K": s} for s in split(self.K)]

    N: int = Field(default=1, ge=1, description="batch")
    C: int = Field(ge=1, description="input channels")
    H: int = Field(ge=1)
    W: int = Field(ge=1)
    K: int = Field(ge=1, description="output channels (filters)")
    R: int = Field(ge=1, description="filter height")
    S: int = Field(ge=1, description="filter width")
    stride: int = Field(default=1, ge=1)
    pad: int = Field(default=0, ge=0)
    groups: int = Field(default=1, ge=1)
    out_h: int | None = Field(default=None, ge=1)
    out_w: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _check(self):
        if self.C % self.groups or self.K % self.groups:
            raise ValueError(f"groups={self.groups} must divide C={self.C} and K={self.K}")
        if self.out_h is None and self.H + 2 * self.pad < self.R:
            raise ValueError(f"filter height R={self.R} exceeds padded input height {self.H + 2 * self.pad}")
        if self.out_w is None and self.W + 2 * self.pad < self.S:
            raise ValueError(f"filter width S={self.S} exceeds padded input width {self.W + 2 * self.pad}")
        return self

    @property
    def P(self) -> int:
        """Output rows: `out_h` when given, else PyTorch's floor((H + 2 pad - R) / stride) + 1."""
        return self.out_h or (self.H + 2 * self.pad - self.R) // self.stride + 1

    @property
    def Q(self) -> int:
        return self.out_w or (self.W + 2 * self.pad - self.S) // self.stride + 1

    def gemm_shapes(self, kind: str | None = None) -> list[GemmShape]:
        # im2col lowering: output pixels x (filter taps x in-channels) x filters, per group
        return [GemmShape(M=self.N * self.P * self.Q, N=self.K // self.groups,
                          K=(self.C // self.groups) * self.R * self.S, count=self.groups)]

    def operand_elements(self, kind: str | None = None) -> dict[str, int]:
        return {"activations": self.N * self.C * (self.H + 2 * self.pad) * (self.W + 2 * self.pad),
                "weights": self.K * (self.C // self.groups) * self.R * self.S,
                "outputs": self.N * self.K * self.P * self.Q}


class AttentionDims(OpDims):
    """Scaled dot-product attention for `batch` sequences; GQA when kv_heads < heads."""
    # Cutting over cores: as GemmDims.
    def split_dims(self, parts: int) -> list[str]:
        """KV-head groups, else batch, else query rows (one cut, chosen by `shard_sizes`)."""
        return ["heads"]

    def shard_sizes(self, dim: str, parts: int, split) -> list[dict] | None:
        kvh = self.n_kv_heads
        group = self.heads // kvh
        if kvh >= parts or (kvh > 1 and self.batch < parts):
            return [{"kv_heads": s, "heads": s * group} for s in split(kvh)]
        if self.batch > 1:
            return [{"batch": s} for s in split(self.batch)]
        return [{"q_len": s} for s in split(self.q_len)]

    batch: int = Field(default=1, ge=1)
    heads: int = Field(ge=1)
    kv_heads: int | None = Field(default=None, ge=1)
    q_len: int = Field(ge=1)
    kv_len: int = Field(ge=1)
    head_dim: int = Field(ge=1)

    @model_validator(mode="after")
    def _check(self):
        if self.kv_heads is not None and self.heads % self.kv_heads:
            raise ValueError(f"kv_heads={self.kv_heads} must divide heads={self.heads}")
        return self

    b_operand: ClassVar[str] = "kv"

    @property
    def n_kv_heads(self) -> int:
        return self.kv_heads or self.heads

    @property
    def kv_elements(self) -> int:
        """Values of K (or V) in the cache: stored per KV head, shared by a GQA group's query heads."""
        return self.batch * self.n_kv_heads * self.kv_len * self.head_dim

    def gemm_shapes(self, kind: str | None = None) -> list[GemmShape]:
        """QK^T (`attention_qk`) or PV (`attention_pv`). GQA: the query heads sharing one K/V head
        are stacked along M, so each K/V head is one GEMM operand, fetched once per group (as GQA
        decode kernels do), not once per query head."""
        group = self.heads // self.n_kv_heads
        M, count = self.q_len * group, self.batch * self.n_kv_heads
        if kind == "attention_qk":
            return [GemmShape(M=M, N=self.kv_len, K=self.head_dim, count=count)]
        return [GemmShape(M=M, N=self.head_dim, K=self.kv_len, count=count)]

    def operand_elements(self, kind: str | None = None) -> dict[str, int]:
        qk = kind == "attention_qk"
        q_side = self.batch * self.heads * self.q_len * (self.head_dim if qk else self.kv_len)
        out = self.batch * self.heads * self.q_len * (self.kv_len if qk else self.head_dim)
        return {"activations": q_side, "weights": self.kv_elements, "outputs": out}


class MoeDims(OpDims):
    """A routed expert GEMM: expert e multiplies its tokens (M_e x K) by its (K x N) weight."""
    # Cutting over cores: as GemmDims.
    def split_dims(self, parts: int) -> list[str]:
        """Output columns N (when not expert-parallel)."""
        return ["default"]

    def shard_sizes(self, dim: str, parts: int, split) -> list[dict] | None:
        return [{"N": s} for s in split(self.N)]

    tokens_per_expert: list[int] = Field(min_length=1)
    N: int = Field(ge=1)
    K: int = Field(ge=1)

    @model_validator(mode="after")
    def _check(self):
        if any(t < 0 for t in self.tokens_per_expert):
            raise ValueError("tokens_per_expert counts must be >= 0")
        return self

    grouped: ClassVar[bool] = True

    def gemm_shapes(self, kind: str | None = None) -> list[GemmShape]:
        counts: dict[int, int] = {}
        for t in self.tokens_per_expert:
            if t:
                counts[t] = counts.get(t, 0) + 1
        return [GemmShape(M=t, N=self.N, K=self.K, count=c) for t, c in sorted(counts.items())]

    def operand_elements(self, kind: str | None = None) -> dict[str, int]:
        experts = sum(1 for t in self.tokens_per_expert if t)   # each routed expert's weight read once
        return {**_gemm_operand_elements(self.gemm_shapes()), "weights": experts * self.K * self.N}


class VectorDims(OpDims):
    """A memory-bound op without MACs: elementwise, softmax, norm. `flops_per_element` is informative."""
    # Cutting over cores: as GemmDims.
    def split_dims(self, parts: int) -> list[str]:
        """Elements."""
        return ["default"]

    def shard_sizes(self, dim: str, parts: int, split) -> list[dict] | None:
        return [{"elements": s} for s in split(self.elements)]

    elements: int = Field(ge=1)
    inputs: int = Field(default=1, ge=0, description="tensors of `elements` values read")
    flops_per_element: float = Field(default=1.0, ge=0)

    def gemm_shapes(self, kind: str | None = None) -> list[GemmShape]:
        return []

    def operand_elements(self, kind: str | None = None) -> dict[str, int]:
        return {"activations": self.elements * self.inputs, "weights": 0, "outputs": self.elements}


def _gemm_operand_elements(shapes: list[GemmShape]) -> dict[str, int]:
    return {"activations": sum(g.M * g.K * g.count for g in shapes),
            "weights": sum(g.K * g.N * g.count for g in shapes),
            "outputs": sum(g.M * g.N * g.count for g in shapes)}


OpKind = Literal["gemm", "conv2d", "attention_qk", "attention_pv", "moe_gemm", "elementwise", "softmax", "norm"]
DIMS_FOR_KIND = {
    "gemm": GemmDims, "conv2d": ConvDims, "attention_qk": AttentionDims, "attention_pv": AttentionDims,
    "moe_gemm": MoeDims, "elementwise": VectorDims, "softmax": VectorDims, "norm": VectorDims,
}
VECTOR_KINDS = ("elementwise", "softmax", "norm")


class Op(StrictSpec):
    name: str = Field(min_length=1)
    kind: OpKind
    dims: Union[GemmDims, ConvDims, AttentionDims, MoeDims, VectorDims]
    repeat: int = Field(default=1, ge=1, description="identical instances (e.g. layers)")
    precision: Precision = Precision()
    phase: Literal["prefill", "decode", "any", "forward", "backward", "optimizer"] = "any"
    sparsity: OperandSparsity = OperandSparsity()
    skip_probability: float = Field(default=0.0, ge=0.0, le=1.0,
                                     description="fraction of executions skipped (layer skipping)")
    layer: str | None = Field(default=None, description="the model layer/block this op belongs to")
    depends_on: list[str] | None = Field(default=None, description="names of ops whose outputs it reads; "
                                         "None = the previous op")

    @model_validator(mode="before")
    @classmethod
    def _typed_dims(cls, data):
        # Pick the dims model from `kind` so errors name the right fields.
        if isinstance(data, dict) and isinstance(data.get("dims"), dict):
            model = DIMS_FOR_KIND.get(data.get("kind")) if isinstance(data.get("kind"), str) else None
            if model is not None:
                try:
                    data = {**data, "dims": model.model_validate(data["dims"])}
                except ValidationError as exc:  # keep 'dims' in the error's location
                    raise ValidationError.from_exception_data(exc.title, [
                        {"type": e["type"], "loc": ("dims", *e["loc"]), "input": e["input"],
                         **({"ctx": e["ctx"]} if "ctx" in e else {})} for e in exc.errors()]) from None
        return data

    @model_validator(mode="after")
    def _check(self):
        expected = DIMS_FOR_KIND[self.kind]
        if not isinstance(self.dims, expected):
            raise ValueError(f"op kind '{self.kind}' needs {expected.__name__} dims")
        from simulator.bounds import check_op_size
        check_op_size(self)
        return self

    @property
    def is_vector(self) -> bool:
        return self.kind in VECTOR_KINDS

    def gemm_shapes(self) -> list[GemmShape]:
        """The GEMMs this op performs once (not multiplied by `repeat`): its dims' lowering."""
        return self.dims.gemm_shapes(self.kind)

    @property
    def dense_macs(self) -> int:
        return sum(g.macs for g in self.gemm_shapes())

    @property
    def executions(self) -> float:
        """Expected executions of the op: `repeat` x (1 - `skip_probability`)."""
        return self.repeat * (1.0 - self.skip_probability)

    def operand_elements(self) -> dict[str, int]:
        """Distinct values of each operand touched once (for memory footprints)."""
        return self.dims.operand_elements(self.kind)


class Trace(StrictSpec):
    schema_version: int = SCHEMA_VERSION
    name: str = "workload"
    description: str | None = None
    source: str | None = Field(default=None, description="where the trace came from (model, extractor, file)")
    ops: list[Op] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self):
        if self.schema_version not in READABLE_SCHEMA_VERSIONS:
            raise ValueError(f"schema_version {self.schema_version} is not supported "
                             f"(this sparsim reads {', '.join(map(str, READABLE_SCHEMA_VERSIONS))})")
        seen: set[str] = set()
        for op in self.ops:
            if self.schema_version < 2 and op.phase in TRAINING_PHASES:
                raise ValueError(f"op '{op.name}' has phase '{op.phase}', which needs schema_version 2")
            if op.name in seen:
                raise ValueError(f"op name '{op.name}' appears twice; op names must be unique")
            seen.add(op.name)
        check_dependencies(self.ops)
        return self

    @property
    def dense_macs(self) -> int:
        return sum(op.dense_macs * op.repeat for op in self.ops)


def check_dependencies(ops: list[Op]) -> None:
    """`depends_on` names existing other ops and forms no cycle (None means: the previous op)."""
    names = [op.name for op in ops]
    known = set(names)
    deps: dict[str, list[str]] = {}
    for i, op in enumerate(ops):
        if op.depends_on is None:
            deps[op.name] = names[i - 1:i]
            continue
        for d in op.depends_on:
            if d == op.name:
                raise ValueError(f"ops[{op.name}].depends_on: op '{op.name}' depends on itself")
            if d not in known:
                raise ValueError(f"ops[{op.name}].depends_on: '{d}' is not an op of this trace")
        deps[op.name] = list(op.depends_on)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in names:
        stack = [(root, iter(deps[root]))]
        state.setdefault(root, 1)
        if state[root] == 2:
            continue
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                path = [n for n, _ in stack]
                cycle = " -> ".join(path[path.index(child):] + [child])
                raise ValueError(f"ops[{node}].depends_on: dependency cycle: {cycle} "
                                 "(depends_on must form a DAG; remove one of these dependencies)")
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(deps[child])))


# ----------------------------------------------------------------------------- file I/O

def _allowed_keys() -> dict[str, list[str]]:
    return {"": list(Trace.model_fields)}


def trace_from_dict(data: dict, *, path: str | Path | None = None) -> Trace:
    if not isinstance(data, dict):
        raise SparsimInputError("a trace file must be a mapping with 'schema_version' and 'ops'",
                                path=path, hint="see workloads/traces/*.yaml for examples")
    if "schema_version" not in data:
        raise SparsimInputError("missing 'schema_version'", path=path, field="schema_version",
                                hint=f"add 'schema_version: {SCHEMA_VERSION}' at the top")
    try:
        return Trace.model_validate(data)
    except ValidationError as exc:
        raise _locate_op_error(exc, data, path) from None


def _locate_op_error(exc: ValidationError, data: dict, path) -> SparsimInputError:
    err = from_validation_error(exc, path=path, allowed_keys=_allowed_keys())
    loc = exc.errors()[0]["loc"]
    # ops[3] -> ops[conv1] reads better for a human
    if len(loc) >= 2 and loc[0] == "ops" and isinstance(loc[1], int):
        try:
            name = data["ops"][loc[1]].get("name")
        except (AttributeError, IndexError, KeyError, TypeError):
            name = None
        if name and err.field:
            err = SparsimInputError(err.message, path=err.path, field=err.field.replace(f"ops[{loc[1]}]", f"ops[{name}]", 1),
                                    hint=err.hint)
    return err


def load_trace(path: str | Path) -> Trace:
    """Read a trace from YAML, JSON, or a SCALE-Sim topology CSV, with one clear error on failure."""
    from simulator.inputs import check_file, read_yaml_file
    from simulator.shipped import not_found_hint, resolve
    path = resolve(path, "traces")
    if not path.exists():
        raise SparsimInputError("workload file not found", path=path, hint=not_found_hint("traces", path))
    path = check_file(path, "workload file")
    if path.suffix.lower() == ".csv":
        from simulator.scalesim_csv import load_topology_csv
        return load_topology_csv(path)
    data = read_yaml_file(path, "workload file")
    return trace_from_dict(data, path=path)


def trace_to_dict(trace: Trace) -> dict:
    return trace.model_dump(mode="json", exclude_defaults=True) | {"schema_version": trace.schema_version}


def save_trace(trace: Trace, path: str | Path) -> Path:
    """Write YAML or JSON (by suffix) atomically: a crash never leaves half a file."""
    path = Path(path)
    if path.suffix.lower() not in (".yaml", ".yml", ".json"):   # a trace written as .csv/.xlsx could not be read back
        raise SparsimInputError(f"cannot write a trace as '{path.suffix}'", path=path, field="--out",
                                hint="use .yaml or .json")
    data = trace_to_dict(trace)
    ordered = {"schema_version": data.pop("schema_version"), **data}
    text = json.dumps(ordered, indent=1) if path.suffix.lower() == ".json" else yaml.safe_dump(
        ordered, sort_keys=False, default_flow_style=None, width=120)
    from simulator.outputs import write_atomic
    write_atomic(path, text)
    return path


__all__ = ["Trace", "Op", "Sparsity", "MeasuredStats", "Precision", "OperandSparsity", "GemmShape",
           "GemmDims", "ConvDims", "AttentionDims", "MoeDims", "VectorDims", "load_trace", "save_trace",
           "trace_from_dict", "trace_to_dict", "SCHEMA_VERSION", "OPERANDS", "TRAINING_PHASES"]
