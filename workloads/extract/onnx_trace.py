"""Traces from an ONNX graph by shape inference, without loading external weight files.

An ONNX file states every operator and, after `onnx.shape_inference`, every tensor's shape;
that is enough for a trace of the compute. External weight data (`.onnx` + `.data`) is not
read: initializer shapes live in the graph itself. Weights stored inline are small enough to
measure, so their sparsity is measured (`workloads.extract.stats`) unless `measure=False`.

Mapping (each node becomes exactly one op, so nothing is dropped silently):
- Conv -> conv2d; Gemm -> gemm (transA/transB honoured); MatMul with a constant right-hand
  side -> gemm (leading dims folded into M);
- MatMul of two activations of rank >= 3 -> attention_pv when the left operand comes from a
  Softmax (through Cast/Dropout/Where), else attention_qk when a Softmax consumes its output
  (possibly through Mul/Div/Add scaling or masking), else a batched gemm;
- Attention (opset 23, 4-D Q/K/V or 3-D with q_num_heads/kv_num_heads) -> QK^T, softmax, PV;
- Softmax -> softmax; LayerNormalization / RMSNormalization / SimplifiedLayerNormalization
  -> norm;
- everything else -> a MAC-free elementwise op: data-moving or arithmetic nodes keep their
  output size (they cost memory time on a vector unit), pure shape/metadata nodes (Shape,
  Reshape, Constant, ...) are counted with one element and no inputs, i.e. at zero cost.
Symbolic dimensions of graph inputs are bound before inference: the first to `batch`, the
others to `seq_len` (override per name with `dims`).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from pathlib import Path

from simulator.errors import SparsimInputError
from simulator.trace import Sparsity, Trace
from workloads.extract.recipe import parse_weights
from workloads.extract.stats import measure, sparsity_from_stats

try:
    import onnx
    from onnx import numpy_helper, shape_inference
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("workloads.extract.onnx_trace needs onnx: pip install 'sparsim[onnx]'") from exc

log = logging.getLogger(__name__)

METADATA_OPS = {"Shape", "Reshape", "Constant", "ConstantOfShape", "Squeeze", "Unsqueeze", "Flatten", "Identity",
                "Size", "Range", "Cast", "CastLike", "Dropout"}
NORM_OPS = {"LayerNormalization", "RMSNormalization", "SimplifiedLayerNormalization", "SkipLayerNormalization",
            "BatchNormalization", "InstanceNormalization", "GroupNormalization"}
PASS_THROUGH = {"Cast", "Dropout", "Where", "Identity", "Mul", "Div", "Add", "Sub"}


def _bind_inputs(model, batch: int, seq_len: int, dims: dict[str, int] | None) -> None:
    dims = dims or {}
    for inp in model.graph.input:
        shape = inp.type.tensor_type.shape
        for i, d in enumerate(shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                continue
            name = d.dim_param if d.HasField("dim_param") else ""
            value = dims.get(name, batch if i == 0 else seq_len)
            d.Clear()
            d.dim_value = int(value)


def _shapes(model) -> dict[str, list[int] | None]:
    shapes: dict[str, list[int] | None] = {}
    for vi in list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.shape.dim]
            shapes[vi.name] = None if any(x is None for x in dims) else dims
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


# Ops whose output has the shape of their first input, and ops that broadcast their inputs.
UNARY = {"Relu", "Gelu", "Erf", "Tanh", "Sigmoid", "Sqrt", "Softmax", "Cast", "Dropout", "Identity", "Neg", "Exp",
         "LayerNormalization", "RMSNormalization", "SimplifiedLayerNormalization", "SkipLayerNormalization", "FastGelu"}
BROADCAST = {"Add", "Sub", "Mul", "Div", "Pow", "Where", "BiasGelu"}


def _infer(model):
    return shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)


def _partial(model) -> dict[str, list[int | None]]:
    out = {}
    for vi in list(model.graph.value_info) + list(model.graph.output):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            out[vi.name] = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.shape.dim]
    return out


def _complete_shapes(model, rounds: int = 8):
    """ONNX inference loses dims behind Shape/Slice arithmetic (e.g. position ids in an exported
    BERT). Fill what follows from known inputs (unary ops keep their input's shape, elementwise
    ops broadcast, a Reshape with one unknown dim keeps the element count), hand that back to ONNX
    inference as value_info, and repeat while it helps."""
    import numpy as np
    from onnx import helper
    for _ in range(rounds):
        model = _infer(model)
        shapes, partial = _shapes(model), _partial(model)
        elem = {vi.name: vi.type.tensor_type.elem_type for vi in list(model.graph.value_info) + list(model.graph.input)}
        filled: dict[str, list[int]] = {}

        def known(name):
            return shapes.get(name) or filled.get(name)
        for node in model.graph.node:
            if not node.output or shapes.get(node.output[0]) is not None:
                continue
            ins = [known(i) for i in node.input if i]
            dims = None
            if node.op_type in UNARY and ins and ins[0]:
                dims = list(ins[0])
            elif node.op_type in BROADCAST and ins and all(ins):
                dims = list(np.broadcast_shapes(*[tuple(x) for x in ins]))
            elif node.op_type in BROADCAST and node.output[0] in partial:
                # some inputs unknown: take a known input of the output's rank that agrees with every
                # dim ONNX did infer (a residual or embedding add, never a bias of lower rank)
                part = partial[node.output[0]]
                fits = [x for x in ins if x and len(x) == len(part)
                        and all(p is None or p == d for p, d in zip(part, x))]
                if fits:
                    dims = list(max(fits, key=math.prod))
            elif node.op_type == "Reshape" and ins and ins[0]:
                part = partial.get(node.output[0])
                if part and sum(d is None for d in part) == 1:
                    rest = math.prod(d for d in part if d is not None)
                    if rest and math.prod(ins[0]) % rest == 0:
                        dims = [d if d is not None else math.prod(ins[0]) // rest for d in part]
            if dims is not None:
                filled[node.output[0]] = [int(d) for d in dims]
        if not filled:
            return model
        keep = [vi for vi in model.graph.value_info if vi.name not in filled]
        del model.graph.value_info[:]
        model.graph.value_info.extend(keep)
        for name, dims in filled.items():
            model.graph.value_info.append(helper.make_tensor_value_info(name, elem.get(name) or onnx.TensorProto.FLOAT,
                                                                        dims))
    return _infer(model)


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _inline_array(init):
    """The initializer's values when stored in the file itself (never external data)."""
    if init.data_location == onnx.TensorProto.EXTERNAL or any(e.key == "location" for e in init.external_data):
        return None
    try:
        return numpy_helper.to_array(init)
    except Exception:  # noqa: BLE001 - unreadable data simply goes unmeasured
        return None


class _Graph:
    def __init__(self, model, bits: int, declared: Sparsity | None, measure_weights: bool):
        self.shapes = _shapes(model)
        self.inits = {i.name: i for i in model.graph.initializer}
        self.producer = {o: n for n in model.graph.node for o in n.output}
        self.consumers: dict[str, list] = {}
        for n in model.graph.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.bits, self.declared, self.measure_weights = bits, declared, measure_weights
        self.ops: list[dict] = []
        self.node_ops: list[dict] = []
        self.names: set[str] = set()

    def shape(self, name, node, required=True):
        s = self.shapes.get(name)
        if s is None and required:
            raise SparsimInputError(f"cannot infer the shape of '{name}' (input of {node.op_type} node "
                                    f"'{node.name or node.output[0]}')", field="model",
                                    hint="export the model with static shapes, or bind symbolic dims with --batch/--seq-len")
        return s

    def _name(self, node, suffix=""):
        base = (node.name or f"{node.op_type}_{node.output[0]}") + suffix
        name, i = base, 1
        while name in self.names:
            name, i = f"{base}.{i}", i + 1
        self.names.add(name)
        return name

    def _emit(self, name, kind, dims, sparsity=None):
        op = {"name": name, "kind": kind, "dims": dims,
              "precision": {"activations": self.bits, "weights": self.bits, "outputs": self.bits}}
        if sparsity:
            op["sparsity"] = sparsity
        self.ops.append(op)

    def _weight_sparsity(self, name, rows_by_k) -> Sparsity | None:
        arr = rows_by_k(_inline_array(self.inits[name])) if (self.measure_weights and name in self.inits) else None
        if arr is not None and arr.size:
            return sparsity_from_stats(measure(arr, block_transpose=True), self.declared)
        return self.declared

    def _from_softmax(self, name, depth=3) -> bool:
        node = self.producer.get(name)
        while node is not None and depth >= 0:
            if node.op_type == "Softmax":
                return True
            if node.op_type not in PASS_THROUGH:
                return False
            node, depth = self.producer.get(node.input[0]), depth - 1
        return False

    def _to_softmax(self, name, depth=3) -> bool:
        frontier = [name]
        for _ in range(depth + 1):
            nxt = []
            for t in frontier:
                for c in self.consumers.get(t, []):
                    if c.op_type == "Softmax":
                        return True
                    if c.op_type in PASS_THROUGH:
                        nxt.append(c.output[0])
            frontier = nxt
        return False

    # --- per node kind
    def node(self, node):
        t = node.op_type
        if t == "Conv":
            return self.conv(node)
        if t == "Gemm":
            return self.gemm(node)
        if t == "MatMul":
            return self.matmul(node)
        if t == "Attention":
            return self.attention(node)
        out = self.shapes.get(node.output[0]) if node.output else None
        elements = math.prod(out) if out else 1
        if t == "Softmax":
            return self._emit(self._name(node), "softmax", {"elements": max(elements, 1), "flops_per_element": 5.0})
        if t in NORM_OPS:
            return self._emit(self._name(node), "norm", {"elements": max(elements, 1), "flops_per_element": 5.0})
        if t in METADATA_OPS or out is None:
            return self._emit(self._name(node), "elementwise", {"elements": 1, "inputs": 0, "flops_per_element": 0.0})
        inputs = sum(1 for i in node.input if i and i not in self.inits)
        self._emit(self._name(node), "elementwise", {"elements": max(elements, 1), "inputs": inputs,
                                                     "flops_per_element": 1.0})

    def conv(self, node):
        x, w = self.shape(node.input[0], node), self.shape(node.input[1], node)
        if len(x) != 4:
            raise SparsimInputError(f"Conv node '{node.name}' is {len(x) - 2}-D; only 2-D convolutions are traced",
                                    field="model")
        out = self.shape(node.output[0], node)
        strides = _attr(node, "strides", [1, 1])
        pads = _attr(node, "pads", [0, 0, 0, 0])
        dims = {"N": x[0], "C": x[1], "H": x[2], "W": x[3], "K": w[0], "R": w[2], "S": w[3],
                "stride": int(strides[0]), "groups": int(_attr(node, "group", 1)), "out_h": out[2], "out_w": out[3]}
        if pads and len(set(pads)) == 1:
            dims["pad"] = int(pads[0])
        sp = self._weight_sparsity(node.input[1], lambda a: None if a is None else a.reshape(a.shape[0], -1))
        self._emit(self._name(node), "conv2d", dims, {"weights": sp} if sp else None)

    def gemm(self, node):
        a, b = self.shape(node.input[0], node), self.shape(node.input[1], node)
        ta, tb = int(_attr(node, "transA", 0)), int(_attr(node, "transB", 0))
        M, K = (a[1], a[0]) if ta else (a[0], a[1])
        N = b[0] if tb else b[1]
        # rows_by_k is [N, K]: B is [K, N] unless transB
        sp = self._weight_sparsity(node.input[1], lambda arr: None if arr is None else (arr if tb else arr.T))
        self._emit(self._name(node), "gemm", {"M": M, "N": N, "K": K}, {"weights": sp} if sp else None)

    def matmul(self, node):
        a, b = self.shape(node.input[0], node), self.shape(node.input[1], node)
        if len(a) == 1:
            a = [1] + a
        if node.input[1] in self.inits and len(b) == 2:
            M = math.prod(a[:-1])
            sp = self._weight_sparsity(node.input[1], lambda arr: None if arr is None else arr.T)
            return self._emit(self._name(node), "gemm", {"M": M, "N": b[1], "K": b[0]}, {"weights": sp} if sp else None)
        if len(a) >= 3 and len(b) >= 3:
            heads = a[-3]
            kv_heads = b[-3] if heads % b[-3] == 0 else heads
            batch = math.prod(a[:-3]) if len(a) > 3 else 1
            if self._from_softmax(node.input[0]):
                dims = {"batch": batch, "heads": heads, "kv_heads": kv_heads, "q_len": a[-2], "kv_len": a[-1],
                        "head_dim": b[-1]}
                return self._emit(self._name(node), "attention_pv", dims)
            if self._to_softmax(node.output[0]):
                dims = {"batch": batch, "heads": heads, "kv_heads": kv_heads, "q_len": a[-2], "kv_len": b[-1],
                        "head_dim": a[-1]}
                return self._emit(self._name(node), "attention_qk", dims)
        batch = math.prod(a[:-2]) if len(a) > 2 else 1
        self._emit(self._name(node), "gemm", {"M": a[-2], "N": b[-1], "K": a[-1], "batch": max(batch, 1)})

    def attention(self, node):
        q, k = self.shape(node.input[0], node), self.shape(node.input[1], node)
        if len(q) == 4:
            B, H, L, D = q
            kvh, S = k[1], k[2]
        else:
            H, kvh = int(_attr(node, "q_num_heads", 0)), int(_attr(node, "kv_num_heads", 0))
            if not H or not kvh:
                raise SparsimInputError(f"3-D Attention node '{node.name}' needs q_num_heads and kv_num_heads",
                                        field="model")
            B, L, D, S = q[0], q[1], q[2] // H, k[1]
        dims = {"batch": B, "heads": H, "kv_heads": kvh, "q_len": L, "kv_len": S, "head_dim": D}
        base = self._name(node)
        self._emit(f"{base}.qk", "attention_qk", dims)
        self._emit(f"{base}.softmax", "softmax", {"elements": B * H * L * S, "flops_per_element": 5.0})
        self._emit(f"{base}.pv", "attention_pv", dims)


def trace_from_onnx(path: str | Path, *, batch: int = 1, seq_len: int = 128, dims: dict[str, int] | None = None,
                    bits: int = 16, weights=None, measure_weights: bool = True, name: str | None = None) -> Trace:
    """A trace of every node of the ONNX model at `path` (external weight files are never read)."""
    from simulator.inputs import read_bytes
    path = Path(path)
    data = read_bytes(path, "ONNX file", max_bytes=2 << 30)  # a regular file (not a FIFO or device), read once
    try:
        model = onnx.load_from_string(data)  # external weight files are never opened
    except Exception as exc:  # noqa: BLE001 - onnx raises assorted decode errors
        raise SparsimInputError(f"not a readable ONNX model ({type(exc).__name__})", path=path) from None
    declared = parse_weights(weights, "--weights")
    _bind_inputs(model, batch, seq_len, dims)
    try:
        model = _complete_shapes(model)
    except Exception as exc:  # noqa: BLE001
        raise SparsimInputError(f"ONNX shape inference failed: {exc}", path=path,
                                hint="check the model with onnx.checker.check_model") from None
    g = _Graph(model, bits, declared, measure_weights)
    try:
        for node in model.graph.node:
            g.node(node)
            g.node_ops.append(g.ops[-1])     # the op this node became (the last one for Attention)
    except SparsimInputError as exc:
        raise exc.located(path=path) from None
    if not g.ops:
        raise SparsimInputError("the ONNX graph has no nodes", path=path)
    macs = sum(1 for op in g.ops if op["kind"] not in ("elementwise", "softmax", "norm"))
    if macs == 0:
        log.warning("%s: no Conv/Gemm/MatMul/Attention nodes; the trace holds only MAC-free ops", path)
    # say which node types became MAC-free elementwise ops, so none disappears unnoticed
    other = Counter(n.op_type for n, op in zip(model.graph.node, g.node_ops) if op["kind"] == "elementwise")
    listed = ", ".join(f"{t} {c}" for t, c in sorted(other.items(), key=lambda kv: (-kv[1], kv[0])))
    return Trace.model_validate({"name": name or path.stem, "source": f"workloads.extract.onnx_trace from {path.name}",
                                 "description": f"ONNX graph, batch {batch}, seq_len {seq_len}"
                                                + (f", weights {declared.label}" if declared else "")
                                                + (f"; {sum(other.values())} nodes as MAC-free elementwise ops "
                                                   f"({listed})" if other else ""),
                                 "ops": g.ops})


__all__ = ["trace_from_onnx"]
