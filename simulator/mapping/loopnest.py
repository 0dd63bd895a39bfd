"""An op as a loop nest (G, N, K, C, P, Q, R, S, stride), and its spatial unrolling onto a rows x cols array.

A convolution keeps its real dims: the input feature map is a tensor of N x C x H x W values,
and a tile of p output rows needs (p - 1) * stride + R input rows (its halo), so the input is
read once per tile from DRAM, never as the im2col matrix. A GEMM (M x K) @ (K x N), executed
`count` times on distinct operands, is the 1x1 convolution G = count, P = M, K = N, C = K.
Groups (grouped and depthwise convs) are the G dim: each group has its own input channels,
weights and outputs, and the search may put several groups in one tile.

The array side works on the im2col view: a fold is one rows x cols tile of the unrolled dims
(a list of dims is a flattened product), every other dim streams through the fold. The array
reads each operand once per fold that its dims do not index (an output-stationary array re-reads
the input for every column fold), and a reduction unrolled on rows leaves partial sums in the
output buffer once per reduction fold (`array_demand`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulator.trace import ConvDims, GemmShape, Op

# Dims each operand depends on (im2col view: the input depends on the filter taps too).
RELEVANT = {"activations": {"G", "N", "C", "P", "Q", "R", "S"}, "weights": {"G", "K", "C", "R", "S"},
            "outputs": {"G", "N", "K", "P", "Q"}}
REDUCTION = {"C", "R", "S"}
GEMM_NAMES = {"P": "M", "K": "N", "C": "K"}


@dataclass(frozen=True)
class LoopNest:
    """Dims of one op (or one GEMM shape of it); `gemm` says to print it in GEMM letters."""
    G: int
    N: int
    K: int
    C: int
    P: int
    Q: int
    R: int = 1
    S: int = 1
    stride: int = 1
    H: int = 0          # input rows/cols that exist (padding is generated, not fetched); 0: touched extent
    W: int = 0
    gemm: bool = True

    def size(self, dim: str) -> int:
        return getattr(self, dim)

    @property
    def macs(self) -> int:
        return self.G * self.N * self.K * self.C * self.P * self.Q * self.R * self.S

    def elements(self, operand: str) -> int:
        """im2col elements of an operand (the array's view)."""
        return math.prod(self.size(d) for d in RELEVANT[operand])

    def name(self, dim: str) -> str:
        return GEMM_NAMES.get(dim, dim) if self.gemm else dim

    def input_extent(self, out: int, r: int, limit: int) -> int:
        touched = (out - 1) * self.stride + r if r >= self.stride else out * r
        return min(touched, limit) if limit else touched


def nest_of_gemm(g: GemmShape, K: int | None = None) -> LoopNest:
    return LoopNest(G=g.count, N=1, K=g.N, C=g.K if K is None else K, P=g.M, Q=1)


def nest_of_conv(d: ConvDims) -> LoopNest:
    return LoopNest(G=d.groups, N=d.N, K=d.K // d.groups, C=d.C // d.groups, P=d.P, Q=d.Q, R=d.R, S=d.S,
                    stride=d.stride, H=d.H, W=d.W, gemm=False)


def nests_of(op: Op) -> list[LoopNest]:
    """The loop nests of an op: a conv keeps its real dims; everything else is its GEMMs."""
    if op.kind == "conv2d":
        return [nest_of_conv(op.dims)]
    return [nest_of_gemm(g) for g in op.gemm_shapes()]


@dataclass(frozen=True)
class Unrolling:
    """Dims on the array's rows and cols, and the fold counts they give for one nest."""
    rows_dims: tuple[str, ...]
    cols_dims: tuple[str, ...]
    rows: int
    cols: int

    def extent(self, nest: LoopNest, dims: tuple[str, ...]) -> int:
        return math.prod(nest.size(d) for d in dims)

    def folds(self, nest: LoopNest) -> tuple[int, int]:
        """(row folds, col folds) of the flattened unrolled dims."""
        return (math.ceil(self.extent(nest, self.rows_dims) / self.rows),
                math.ceil(self.extent(nest, self.cols_dims) / self.cols))

    def stream(self, nest: LoopNest) -> int:
        """Steps of the dims that are not unrolled (they stream through each fold); groups that are
        not unrolled run one after another, each with its own folds."""
        spatial = set(self.rows_dims) | set(self.cols_dims)
        return math.prod(nest.size(d) for d in ("N", "K", "C", "P", "Q", "R", "S") if d not in spatial)

    def granule(self, nest: LoopNest, dim: str) -> int:
        """Tile sizes of `dim` must be multiples of this so tiles hold whole folds (1: any size).
        A dim alone on an axis (dims of size 1 aside) aligns to that axis; in a flattened group with
        R and S (kept whole in tiles) it aligns so that the group's tile is a whole number of folds."""
        for dims, extent in ((self.rows_dims, self.rows), (self.cols_dims, self.cols)):
            if dim not in dims:
                continue
            rest = [d for d in dims if d != dim and nest.size(d) > 1]
            if not rest:
                return extent
            if set(rest) <= {"R", "S"}:
                whole = math.prod(nest.size(d) for d in rest)
                return extent // math.gcd(extent, whole)
            return 1
        return 1

    def array_demand(self, nest: LoopNest, pe_weights: int = 0) -> dict[str, float]:
        """Elements the array reads of each operand from its innermost buffer (im2col view), and the
        rounds of partial sums written to (and, less the last, read from) the output buffer.
        `pe_weights`: weights a PE's own register file holds, when it also has an output register."""
        fr, fc = self.folds(nest)
        demand = {}
        for operand in ("activations", "weights"):
            rel = RELEVANT[operand]
            times = (1 if set(self.rows_dims) & rel else fr) * (1 if set(self.cols_dims) & rel else fc)
            demand[operand] = float(nest.elements(operand) * times)
        red = (fr if set(self.rows_dims) & REDUCTION else 1) * (fc if set(self.cols_dims) & REDUCTION else 1)
        # With per-PE weight and output registers, a PE can cycle through the weights of several
        # reduction folds while its partial sum stays in its output register.
        group = max(1, min(red, pe_weights // max(1, self.weights_per_pe(nest)))) if pe_weights else 1
        demand["psum_rounds"] = float(math.ceil(red / group))
        return demand

    def weights_per_pe(self, nest: LoopNest) -> int:
        """Weights one PE uses during one fold (the streamed dims that index the weights)."""
        spatial = set(self.rows_dims) | set(self.cols_dims)
        return math.prod(nest.size(d) for d in RELEVANT["weights"] - spatial - {"G"})

    def stationary_outputs(self) -> bool:
        """Outputs accumulate in the PEs over the whole streamed reduction (no reduction dim unrolled)."""
        return not (set(self.rows_dims) | set(self.cols_dims)) & REDUCTION

    def compute_cycles(self, nest: LoopNest, timing: str) -> float:
        """Cycles of an explicitly unrolled nest: every fold streams the other dims, with a fill and
        drain (rows + cols - 2) per fold (`scalesim`) or once per op (`pipelined`). Loading a
        stationary operand is assumed hidden behind the stream (double-buffered PE registers)."""
        fr, fc = self.folds(nest)
        folds = fr * fc * (1 if "G" in self.rows_dims + self.cols_dims else nest.G)
        fill = self.rows + self.cols - 2
        if timing == "pipelined":
            return float(folds * self.stream(nest) + fill - 1)
        return float(folds * (self.stream(nest) + fill) - 1)
