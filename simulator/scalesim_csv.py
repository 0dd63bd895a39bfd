"""Import SCALE-Sim topology CSVs as traces, so `--workload topology.csv` just works.

Rows (the header line is skipped; trailing commas are tolerated):
- conv: `name, IFMAP H, IFMAP W, Filter H, Filter W, Channels, Num Filter, Strides[, N:M]`
- GEMM (a header naming M, N, K): `name, M, N, K[, N:M]`
SCALE-Sim sizes a conv output as ceil((H - Fh + S) / S) with no padding, which differs
from PyTorch's floor rule for some strides; the importer stores that size explicitly
(`out_h`, `out_w`) so cycles match SCALE-Sim. Values are 8-bit (SCALE-Sim's fixed word).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from pydantic import ValidationError

from simulator.errors import SparsimInputError, from_validation_error
from simulator.sparsity import split_nm
from simulator.trace import Op, Trace


def _parse_nm(text: str, path, line: int) -> dict | None:
    text = text.strip()
    if not text:
        return None
    pair = split_nm(text)
    if pair is None:
        raise SparsimInputError(f"line {line}: sparsity '{text}' is not of the form N:M", path=path,
                                field="N:M", hint="e.g. 2:4")
    n, m = pair
    return {"weights": {"kind": "nm", "n": n, "m": m}}


def load_topology_csv(path: str | Path) -> Trace:
    from simulator.inputs import read_text
    path = Path(path)
    text = read_text(path, "topology file")
    try:
        rows = [[c.strip() for c in row] for row in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error as exc:
        raise SparsimInputError(f"not a readable CSV ({exc})", path=path, hint="one layer per line") from None
    rows = [r[:-1] if r and r[-1] == "" else r for r in rows]
    rows = [r for r in rows if any(r)]
    if len(rows) < 2:
        raise SparsimInputError("no layers after the header line", path=path, hint="add one layer per line")
    header = [h.lower() for h in rows[0]]
    is_gemm = len(header) >= 4 and header[1:4] == ["m", "n", "k"]
    need = 4 if is_gemm else 8
    fields = "name, M, N, K[, N:M]" if is_gemm else "name, IFMAP H, IFMAP W, Filter H, Filter W, Channels, Num Filter, Strides[, N:M]"
    ops = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) < need:
            raise SparsimInputError(f"line {line}: {len(row)} fields, need {need}", path=path,
                                    field=row[0] if row else None, hint=f"a row is: {fields},")
        try:
            nums = [_whole(x) for x in row[1:need]]
        except (ValueError, OverflowError):
            raise SparsimInputError(f"line {line}: non-numeric field in {row[1:need]}", path=path, field=row[0],
                                    hint=f"a row is: {fields},") from None
        sparsity = _parse_nm(row[need], path, line) if len(row) > need else None
        if is_gemm:
            M, N, K = nums
            op = {"name": row[0], "kind": "gemm", "dims": {"M": M, "N": N, "K": K}}
        else:
            H, W, R, S, C, K, stride = nums
            out_h = math.ceil((H - R + stride) / stride) if stride > 0 else 0
            out_w = math.ceil((W - S + stride) / stride) if stride > 0 else 0
            op = {"name": row[0], "kind": "conv2d",
                  "dims": {"C": C, "H": H, "W": W, "K": K, "R": R, "S": S, "stride": stride,
                           "out_h": out_h, "out_w": out_w}}
        if sparsity:
            op["sparsity"] = sparsity
        op["precision"] = {"activations": 8, "weights": 8, "outputs": 8}
        try:
            ops.append(Op.model_validate(op))
        except ValidationError as exc:
            raise from_validation_error(exc, path=path, field_prefix=f"line {line} ({row[0]})") from None
    try:
        return Trace(name=path.stem, source=f"SCALE-Sim topology {path.name}", ops=ops)
    except ValidationError as exc:
        raise from_validation_error(exc, path=path) from None


def _whole(text: str) -> int:
    """A whole number written as '64' or '64.0' (ValueError for '6.5', 'inf', 'nan' or words)."""
    value = float(text)
    if not math.isfinite(value) or not value.is_integer():
        raise ValueError(text)
    return int(value)
