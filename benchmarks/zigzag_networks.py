"""Small ONNX descriptions of further networks for the ZigZag comparison, built with `onnx.helper`.

Why: ZigZag ships only three ONNX networks (ResNet-18, AlexNet, MobileNet-v2). These generators add
held-out networks of other shapes, so both tools see networks neither was developed on: ResNet-50
(bottlenecks, stride-2 1x1 downsample), VGG-16 (3x3 stacks, 25088-wide fc), an EfficientNet-B0-like
MBConv stack (3x3 and 5x5 depthwise, stride-2 depthwise), SqueezeNet 1.1 (fire modules: narrow 1x1
squeeze, 1x1 and 3x3 expand), GoogLeNet (inception modules: parallel 1x1, 3x3, 5x5 and pool-projection
branches of odd widths), an Inception-v3 with one module of each kind (1x7 / 7x1 and 1x3 / 3x1
factorised convs, unpadded stride-2 reductions), and as Gemm nodes the projections and FFN of one
BERT-base (128 tokens) and one BERT-large (512 tokens) encoder layer and of one GPT-2 small decoder
layer (1024 tokens). Only the layer shapes matter: weights are graph inputs with a declared shape (no
values), BatchNorm is folded away, activations are omitted; Add, pooling, Flatten, Concat and Slice
nodes keep the graph's shapes right (ZigZag parses them as dummy nodes, sparsim's comparison
skips them). Shapes are filled in by `onnx.shape_inference`, which ZigZag's parser needs.

Dimensions follow the published architectures: ResNet-50 as in torchvision (He et al., CVPR 2016;
stride on the 3x3 conv of each bottleneck), VGG-16 configuration D (Simonyan and Zisserman, ICLR 2015),
EfficientNet-B0's stage table (Tan and Le, ICML 2019, Table 1; one block per stage, no
squeeze-excitation: an approximation that keeps every distinct conv shape class), BERT-base
(Devlin et al., NAACL 2019: hidden 768, FFN 3072) at sequence length 128, BERT-large (hidden 1024,
FFN 4096) at 512, GPT-2 small (Radford et al., 2019: hidden 768, fused QKV 2304, MLP 3072) at 1024 tokens.

Only `onnx` is imported, so ZigZag's venv (which has onnx) can run it:
    python benchmarks/zigzag_networks.py resnet50 /tmp/resnet50.onnx
"""

from __future__ import annotations

import sys

import onnx
from onnx import TensorProto, helper

NETWORKS = ("resnet50", "vgg16", "efficientnet_b0_lite", "squeezenet1_1", "googlenet", "inception_v3_lite",
            "bert_base_layer", "bert_large_layer", "gpt2_layer")


class _Graph:
    """Accumulates nodes and weight inputs; tensor names are generated."""

    def __init__(self, name: str, input_shape: list[int]):
        self.name = name
        self.nodes: list = []
        self.inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, input_shape)]
        self.count = 0
        self.initializers: list = []

    def _fresh(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def _weight(self, name: str, shape: list[int]) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        return name

    def conv(self, x: str, c_in: int, c_out: int, k: int | tuple[int, int], stride: int = 1, groups: int = 1,
             name: str = "", pad: int | None = None) -> str:
        """A conv with a k x k (or kh x kw) filter; padding 'same' (k // 2 per axis) unless `pad` is given."""
        name = name or self._fresh("conv")
        kh, kw = (k, k) if isinstance(k, int) else k
        ph, pw = (kh // 2, kw // 2) if pad is None else (pad, pad)
        w = self._weight(f"{name}.weight", [c_out, c_in // groups, kh, kw])
        y = f"{name}.out"
        self.nodes.append(helper.make_node("Conv", [x, w], [y], name=name, kernel_shape=[kh, kw],
                                           strides=[stride, stride], pads=[ph, pw, ph, pw], group=groups))
        return y

    def gemm(self, x: str, k: int, n: int, name: str = "") -> str:
        name = name or self._fresh("fc")
        w = self._weight(f"{name}.weight", [n, k])
        y = f"{name}.out"
        self.nodes.append(helper.make_node("Gemm", [x, w], [y], name=name, transB=1))
        return y

    def op(self, kind: str, inputs: list[str], **attrs) -> str:
        y = self._fresh(kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [y], name=y, **attrs))
        return y

    def consts(self, *values: list[int]) -> list[str]:
        """Int64 constant tensors (e.g. Slice's starts, ends, axes) as initializers."""
        names = []
        for v in values:
            names.append(self._fresh("const"))
            self.initializers.append(helper.make_tensor(names[-1], TensorProto.INT64, [len(v)], v))
        return names

    def model(self, out: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, self.inputs,
                                  [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
                                  initializer=self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def _classifier(g: _Graph, x: str, channels: int, classes: int = 1000) -> str:
    x = g.op("Flatten", [g.op("GlobalAveragePool", [x])])
    return g.gemm(x, channels, classes, name="fc")


def resnet50() -> onnx.ModelProto:
    g = _Graph("resnet50", [1, 3, 224, 224])
    x = g.conv("input", 3, 64, 7, stride=2, name="conv1")
    x = g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    c_in = 64
    for stage, (width, blocks, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), 1):
        for b in range(blocks):
            s = stride if b == 0 else 1
            pre = f"layer{stage}.{b}"
            y = g.conv(x, c_in, width, 1, name=f"{pre}.conv1")
            y = g.conv(y, width, width, 3, stride=s, name=f"{pre}.conv2")
            y = g.conv(y, width, 4 * width, 1, name=f"{pre}.conv3")
            short = g.conv(x, c_in, 4 * width, 1, stride=s, name=f"{pre}.downsample") if b == 0 else x
            x, c_in = g.op("Add", [y, short]), 4 * width
    return g.model(_classifier(g, x, c_in))


def vgg16() -> onnx.ModelProto:
    g = _Graph("vgg16", [1, 3, 224, 224])
    x, c_in = "input", 3
    for stage, (width, convs) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)), 1):
        for i in range(convs):
            x, c_in = g.conv(x, c_in, width, 3, name=f"conv{stage}_{i + 1}"), width
        x = g.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = g.op("Flatten", [x])
    x = g.gemm(x, 512 * 7 * 7, 4096, name="fc6")
    x = g.gemm(x, 4096, 4096, name="fc7")
    return g.model(g.gemm(x, 4096, 1000, name="fc8"))


# EfficientNet-B0 stages: (expansion, output channels, stride, kernel); one MBConv block each.
EFFICIENTNET_B0_STAGES = ((1, 16, 1, 3), (6, 24, 2, 3), (6, 40, 2, 5), (6, 80, 2, 3), (6, 112, 1, 5),
                          (6, 192, 2, 5), (6, 320, 1, 3))


def efficientnet_b0_lite() -> onnx.ModelProto:
    g = _Graph("efficientnet_b0_lite", [1, 3, 224, 224])
    x, c_in = g.conv("input", 3, 32, 3, stride=2, name="stem"), 32
    for i, (t, c_out, stride, k) in enumerate(EFFICIENTNET_B0_STAGES, 1):
        hidden = c_in * t
        y = g.conv(x, c_in, hidden, 1, name=f"block{i}.expand") if t != 1 else x
        y = g.conv(y, hidden, hidden, k, stride=stride, groups=hidden, name=f"block{i}.depthwise")
        y = g.conv(y, hidden, c_out, 1, name=f"block{i}.project")
        x = g.op("Add", [y, x]) if stride == 1 and c_in == c_out else y
        c_in = c_out
    x = g.conv(x, c_in, 1280, 1, name="head")
    return g.model(_classifier(g, x, 1280))


# SqueezeNet 1.1 fire modules after each pooling stage: (squeeze, expand) channels.
SQUEEZENET_FIRES = (((16, 64), (16, 64)), ((32, 128), (32, 128)), ((48, 192), (48, 192), (64, 256), (64, 256)))


def squeezenet1_1() -> onnx.ModelProto:
    """SqueezeNet 1.1 (Iandola et al. 2016; torchvision's squeezenet1_1): fire modules of a 1x1 squeeze
    conv feeding a 1x1 and a 3x3 expand conv, concatenated; 1x1 classifier conv."""
    g = _Graph("squeezenet1_1", [1, 3, 224, 224])
    x, c_in = g.conv("input", 3, 64, 3, stride=2, pad=0, name="conv1"), 64
    for stage, fires in enumerate(SQUEEZENET_FIRES):
        x = g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
        for i, (squeeze, expand) in enumerate(fires):
            pre = f"fire{stage}.{i}"
            y = g.conv(x, c_in, squeeze, 1, name=f"{pre}.squeeze")
            a = g.conv(y, squeeze, expand, 1, name=f"{pre}.expand1x1")
            b = g.conv(y, squeeze, expand, 3, name=f"{pre}.expand3x3")
            x, c_in = g.op("Concat", [a, b], axis=1), 2 * expand
    x = g.conv(x, c_in, 1000, 1, name="classifier")
    return g.model(g.op("Flatten", [g.op("GlobalAveragePool", [x])]))


# GoogLeNet inception modules: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection); a max pool after 3b and 4e.
INCEPTIONS = (("3a", 64, 96, 128, 16, 32, 32), ("3b", 128, 128, 192, 32, 96, 64), ("4a", 192, 96, 208, 16, 48, 64),
              ("4b", 160, 112, 224, 24, 64, 64), ("4c", 128, 128, 256, 24, 64, 64), ("4d", 112, 144, 288, 32, 64, 64),
              ("4e", 256, 160, 320, 32, 128, 128), ("5a", 256, 160, 320, 32, 128, 128),
              ("5b", 384, 192, 384, 48, 128, 128))


def googlenet() -> onnx.ModelProto:
    """GoogLeNet (Szegedy et al., CVPR 2015, Table 1; 5x5 branches as in the paper, no auxiliary heads)."""
    g = _Graph("googlenet", [1, 3, 224, 224])

    def pool(x: str, stride: int) -> str:
        return g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[stride, stride], pads=[1, 1, 1, 1])

    x = pool(g.conv("input", 3, 64, 7, stride=2, name="conv1"), 2)
    x = pool(g.conv(g.conv(x, 64, 64, 1, name="conv2"), 64, 192, 3, name="conv3"), 2)
    c_in = 192
    for name, c1, r3, c3, r5, c5, pp in INCEPTIONS:
        branches = [g.conv(x, c_in, c1, 1, name=f"{name}.1x1"),
                    g.conv(g.conv(x, c_in, r3, 1, name=f"{name}.3x3_reduce"), r3, c3, 3, name=f"{name}.3x3"),
                    g.conv(g.conv(x, c_in, r5, 1, name=f"{name}.5x5_reduce"), r5, c5, 5, name=f"{name}.5x5"),
                    g.conv(pool(x, 1), c_in, pp, 1, name=f"{name}.pool_proj")]
        x, c_in = g.op("Concat", branches, axis=1), c1 + c3 + c5 + pp
        if name in ("3b", "4e"):
            x = pool(x, 2)
    return g.model(_classifier(g, x, c_in))


def inception_v3_lite() -> onnx.ModelProto:
    """Inception-v3 (Szegedy et al., CVPR 2016; torchvision's inception_v3 at 299 x 299) with one module of
    each kind (A, B, C, D, E) instead of 3, 1, 4, 1, 2: factorised 1x7 / 7x1 and 1x3 / 3x1 convs, stride-2
    reduction convs without padding."""
    g = _Graph("inception_v3_lite", [1, 3, 299, 299])

    def pool(x: str, stride: int, kind: str = "MaxPool") -> str:
        pads = [1, 1, 1, 1] if stride == 1 else [0, 0, 0, 0]
        return g.op(kind, [x], kernel_shape=[3, 3], strides=[stride, stride], pads=pads)

    def chain(x: str, c_in: int, steps: list, pre: str) -> str:
        for i, (c_out, k, *stride) in enumerate(steps):
            s = stride[0] if stride else 1
            x = g.conv(x, c_in, c_out, k, stride=s, pad=0 if s == 2 else None, name=f"{pre}.{i}")
            c_in = c_out
        return x

    x = chain("input", 3, [(32, 3, 2)], "Conv2d_1a")
    x = g.conv(x, 32, 32, 3, pad=0, name="Conv2d_2a")
    x = pool(g.conv(x, 32, 64, 3, name="Conv2d_2b"), 2)
    x = g.conv(g.conv(x, 64, 80, 1, name="Conv2d_3b"), 80, 192, 3, pad=0, name="Conv2d_4a")
    x = pool(x, 2)
    a = [chain(x, 192, [(64, 1)], "Mixed_5b.b1x1"), chain(x, 192, [(48, 1), (64, 5)], "Mixed_5b.b5x5"),
         chain(x, 192, [(64, 1), (96, 3), (96, 3)], "Mixed_5b.b3x3dbl"),
         chain(pool(x, 1, "AveragePool"), 192, [(32, 1)], "Mixed_5b.pool")]
    x = g.op("Concat", a, axis=1)
    b = [chain(x, 256, [(384, 3, 2)], "Mixed_6a.b3x3"), chain(x, 256, [(64, 1), (96, 3), (96, 3, 2)], "Mixed_6a.dbl"),
         pool(x, 2)]
    x = g.op("Concat", b, axis=1)
    c = [chain(x, 736, [(192, 1)], "Mixed_6b.b1x1"),
         chain(x, 736, [(128, 1), (128, (1, 7)), (192, (7, 1))], "Mixed_6b.b7x7"),
         chain(x, 736, [(128, 1), (128, (7, 1)), (128, (1, 7)), (128, (7, 1)), (192, (1, 7))], "Mixed_6b.dbl"),
         chain(pool(x, 1, "AveragePool"), 736, [(192, 1)], "Mixed_6b.pool")]
    x = g.op("Concat", c, axis=1)
    d = [chain(x, 768, [(192, 1), (320, 3, 2)], "Mixed_7a.b3x3"),
         chain(x, 768, [(192, 1), (192, (1, 7)), (192, (7, 1)), (192, 3, 2)], "Mixed_7a.b7x7x3"), pool(x, 2)]
    x = g.op("Concat", d, axis=1)
    mid = chain(x, 1280, [(384, 1)], "Mixed_7b.b3x3")
    dbl = chain(x, 1280, [(448, 1), (384, 3)], "Mixed_7b.dbl")
    e = [chain(x, 1280, [(320, 1)], "Mixed_7b.b1x1"),
         chain(mid, 384, [(384, (1, 3))], "Mixed_7b.b3x3_a"), chain(mid, 384, [(384, (3, 1))], "Mixed_7b.b3x3_b"),
         chain(dbl, 384, [(384, (1, 3))], "Mixed_7b.dbl_a"), chain(dbl, 384, [(384, (3, 1))], "Mixed_7b.dbl_b"),
         chain(pool(x, 1, "AveragePool"), 1280, [(192, 1)], "Mixed_7b.pool")]
    return g.model(_classifier(g, g.op("Concat", e, axis=1), 2048))


def bert_base_layer(seq: int = 128, hidden: int = 768, ffn: int = 3072,
                    name: str = "bert_base_layer") -> onnx.ModelProto:
    """Q, K, V and output projections and the two FFN GEMMs (attention's activation x activation
    products are not weight layers and are left out)."""
    g = _Graph(name, [seq, hidden])
    q, k, v = (g.gemm("input", hidden, hidden, name=n) for n in ("query", "key", "value"))
    ctx = g.op("Add", [g.op("Add", [q, k]), v])      # stands in for attention: same [seq, hidden] shape
    x = g.gemm(ctx, hidden, hidden, name="attn_out")
    x = g.gemm(x, hidden, ffn, name="ffn_in")
    return g.model(g.gemm(x, ffn, hidden, name="ffn_out"))


def bert_large_layer() -> onnx.ModelProto:
    """One BERT-large encoder layer (hidden 1024, FFN 4096) at 512 tokens."""
    return bert_base_layer(seq=512, hidden=1024, ffn=4096, name="bert_large_layer")


def gpt2_layer() -> onnx.ModelProto:
    """One GPT-2 small decoder layer's weight GEMMs at a 1024-token context (Radford et al. 2019: hidden 768,
    fused QKV projection 768 -> 2304, MLP 3072)."""
    seq, hidden, ffn = 1024, 768, 3072
    g = _Graph("gpt2_layer", [seq, hidden])
    qkv = g.gemm("input", hidden, 3 * hidden, name="c_attn")
    ctx = g.op("Slice", [qkv, *g.consts([0], [hidden], [1])])     # stands in for attention: [seq, hidden]
    x = g.gemm(ctx, hidden, hidden, name="attn.c_proj")
    x = g.gemm(x, hidden, ffn, name="mlp.c_fc")
    return g.model(g.gemm(x, ffn, hidden, name="mlp.c_proj"))


def build(name: str) -> onnx.ModelProto:
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}: one of {', '.join(NETWORKS)}")
    return globals()[name]()


def write(name: str, path: str) -> str:
    """Save network `name` (shapes inferred) to `path`; return the path."""
    onnx.save(build(name), path)
    return path


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(f"usage: {sys.argv[0]} NETWORK OUT.onnx  (NETWORK: {', '.join(NETWORKS)})")
    write(sys.argv[1], sys.argv[2])
