"""Small ONNX descriptions of further networks for the ZigZag comparison, built with `onnx.helper`.

Why: ZigZag ships only three ONNX networks (ResNet-18, AlexNet, MobileNet-v2). These generators add
held-out networks of other shapes -- ResNet-50 (bottlenecks, stride-2 1x1 downsample), VGG-16 (3x3
stacks, 25088-wide fc), an EfficientNet-B0-like MBConv stack (3x3 and 5x5 depthwise, stride-2
depthwise), SqueezeNet 1.1 (fire modules: narrow 1x1 squeeze, 1x1 and 3x3 expand), GoogLeNet (inception
modules: parallel 1x1, 3x3, 5x5 and pool-projection branches of odd widths), one BERT-base encoder
layer's projections and FFN and one GPT-2 small decoder layer's (1024-token context) as Gemm nodes --
so both tools see networks neither was developed on. Only the layer shapes matter: weights are graph inputs with
a declared shape (no values), BatchNorm is folded away, activations are omitted; Add, pooling and
Flatten, Concat and Slice nodes keep the graph's shapes right (ZigZag parses them as dummy nodes, sparsim's comparison
skips them). Shapes are filled in by `onnx.shape_inference`, which ZigZag's parser needs.

Dimensions follow the published architectures: ResNet-50 as in torchvision (He et al., CVPR 2016;
stride on the 3x3 conv of each bottleneck), VGG-16 configuration D (Simonyan and Zisserman, ICLR 2015),
EfficientNet-B0's stage table (Tan and Le, ICML 2019, Table 1; one block per stage, no
squeeze-excitation: an approximation that keeps every distinct conv shape class), BERT-base
(Devlin et al., NAACL 2019: hidden 768, FFN 3072) at sequence length 128, GPT-2 small (Radford et al.,
2019: hidden 768, fused QKV 2304, MLP 3072) at 1024 tokens.

Only `onnx` is imported, so ZigZag's venv (which has onnx) can run it:
    python benchmarks/zigzag_networks.py resnet50 /tmp/resnet50.onnx
"""

from __future__ import annotations

import sys

import onnx
from onnx import TensorProto, helper

NETWORKS = ("resnet50", "vgg16", "efficientnet_b0_lite", "squeezenet1_1", "googlenet", "bert_base_layer",
            "gpt2_layer")


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

    def conv(self, x: str, c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, name: str = "",
             pad: int | None = None) -> str:
        name = name or self._fresh("conv")
        w = self._weight(f"{name}.weight", [c_out, c_in // groups, k, k])
        y = f"{name}.out"
        self.nodes.append(helper.make_node("Conv", [x, w], [y], name=name, kernel_shape=[k, k],
                                           strides=[stride, stride], pads=[k // 2 if pad is None else pad] * 4,
                                           group=groups))
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


def bert_base_layer(seq: int = 128, hidden: int = 768, ffn: int = 3072) -> onnx.ModelProto:
    """Q, K, V and output projections and the two FFN GEMMs (attention's activation x activation
    products are not weight layers and are left out)."""
    g = _Graph("bert_base_layer", [seq, hidden])
    q, k, v = (g.gemm("input", hidden, hidden, name=n) for n in ("query", "key", "value"))
    ctx = g.op("Add", [g.op("Add", [q, k]), v])      # stands in for attention: same [seq, hidden] shape
    x = g.gemm(ctx, hidden, hidden, name="attn_out")
    x = g.gemm(x, hidden, ffn, name="ffn_in")
    return g.model(g.gemm(x, ffn, hidden, name="ffn_out"))


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
