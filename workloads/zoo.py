"""Layer-exact traces of standard CNNs (torchvision definitions, 224x224 input, batch 1).

ResNet-18/50 (He et al. 2016; torchvision's v1.5 bottleneck, stride on the 3x3 conv) and
MobileNet-v2 (Sandler et al. 2018; depthwise convs as grouped convs). Each conv and the
classifier are MAC ops; residual additions are elementwise ops. Batch norm is assumed
folded into the convs and ReLU fused, as inference compilers do. Regenerate the shipped
files with `python -m workloads.zoo`.
"""

from __future__ import annotations

from pathlib import Path

from simulator.trace import Op, Trace, save_trace

PRECISION = {"activations": 8, "weights": 8, "outputs": 8}


class _Builder:
    """Tracks the running feature-map shape while layers are appended."""

    def __init__(self, channels: int = 3, size: int = 224):
        self.c, self.h = channels, size
        self.ops: list[dict] = []

    def conv(self, name: str, k: int, r: int, stride: int = 1, groups: int = 1, layer: str | None = None,
             depends_on: list[str] | None = None) -> str:
        pad = r // 2
        self.ops.append({"name": name, "kind": "conv2d", "layer": layer, "precision": PRECISION,
                         "depends_on": depends_on,
                         "dims": {"C": self.c, "H": self.h, "W": self.h, "K": k, "R": r, "S": r,
                                  "stride": stride, "pad": pad, "groups": groups}})
        self.h = (self.h + 2 * pad - r) // stride + 1
        self.c = k
        return name

    def add(self, name: str, inputs: list[str], layer: str | None = None) -> str:
        self.ops.append({"name": name, "kind": "elementwise", "layer": layer, "precision": PRECISION,
                         "depends_on": inputs, "dims": {"elements": self.c * self.h * self.h, "inputs": 2}})
        return name

    def pool(self, r: int, stride: int) -> None:
        self.h = (self.h + 2 * (r // 2) - r) // stride + 1

    def fc(self, name: str, out_features: int) -> str:
        self.ops.append({"name": name, "kind": "gemm", "layer": "fc", "precision": PRECISION,
                         "dims": {"M": 1, "N": out_features, "K": self.c}})
        return name

    def trace(self, name: str, description: str) -> Trace:
        ops = [Op.model_validate({k: v for k, v in op.items() if v is not None}) for op in self.ops]
        return Trace(name=name, description=description, source="workloads/zoo.py (torchvision layer shapes)", ops=ops)


def resnet(depth: int) -> Trace:
    blocks = {18: [2, 2, 2, 2], 50: [3, 4, 6, 3]}[depth]
    bottleneck = depth >= 50
    b = _Builder()
    prev = b.conv("conv1", 64, 7, stride=2, layer="stem")
    b.pool(3, 2)
    for stage, (width, n) in enumerate(zip((64, 128, 256, 512), blocks), start=1):
        for i in range(n):
            stride = 2 if (i == 0 and stage > 1) else 1
            layer = f"layer{stage}.{i}"
            c_in, h_in = b.c, b.h
            out = width * 4 if bottleneck else width
            if bottleneck:
                x = b.conv(f"{layer}.conv1", width, 1, layer=layer, depends_on=[prev])
                x = b.conv(f"{layer}.conv2", width, 3, stride=stride, layer=layer)
                x = b.conv(f"{layer}.conv3", out, 1, layer=layer)
            else:
                x = b.conv(f"{layer}.conv1", width, 3, stride=stride, layer=layer, depends_on=[prev])
                x = b.conv(f"{layer}.conv2", width, 3, layer=layer)
            shortcut = prev
            if stride != 1 or c_in != out:
                c_out, h_out = b.c, b.h
                b.c, b.h = c_in, h_in
                shortcut = b.conv(f"{layer}.downsample", out, 1, stride=stride, layer=layer, depends_on=[prev])
                b.c, b.h = c_out, h_out
            prev = b.add(f"{layer}.add", [x, shortcut], layer=layer)
    b.fc("fc", 1000)
    return b.trace(f"resnet{depth}", f"ResNet-{depth}, 224x224, batch 1, int8")


def mobilenet_v2() -> Trace:
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1)]
    b = _Builder()
    prev = b.conv("features.0", 32, 3, stride=2, layer="stem")
    idx = 1
    for t, c, n, s in settings:
        for i in range(n):
            stride = s if i == 0 else 1
            layer = f"features.{idx}"
            c_in = b.c
            hidden = c_in * t
            first = prev
            if t != 1:
                b.conv(f"{layer}.expand", hidden, 1, layer=layer, depends_on=[prev])
            b.conv(f"{layer}.depthwise", hidden, 3, stride=stride, groups=hidden, layer=layer,
                   depends_on=None if t != 1 else [prev])
            prev = b.conv(f"{layer}.project", c, 1, layer=layer)
            if stride == 1 and c_in == c:
                prev = b.add(f"{layer}.add", [prev, first], layer=layer)
            idx += 1
    b.conv("features.18", 1280, 1, layer="head")
    b.fc("classifier", 1000)
    return b.trace("mobilenet_v2", "MobileNet-v2 (width 1.0), 224x224, batch 1, int8; depthwise as grouped conv")


ZOO = {"resnet18": lambda: resnet(18), "resnet50": lambda: resnet(50), "mobilenet_v2": mobilenet_v2}


def main(out_dir: str | Path = Path(__file__).parent / "traces") -> None:
    for name, build in ZOO.items():
        path = save_trace(build(), Path(out_dir) / f"{name}.yaml")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
