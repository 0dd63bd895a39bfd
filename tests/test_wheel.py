"""The built wheel carries the shipped specs, traces, HF configs and sweeps, laid out as in the checkout."""

import importlib.util
import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT

SHIPPED = ["arch_configs/edge_npu_32x32_os.yaml", "arch_configs/systems/quad_edge_npu.yaml",
           "arch_configs/fpga_devices/xcu280.yaml",
           "workloads/traces/resnet50.yaml", "workloads/hf_configs/llama2-7b.json",
           "analysis/sweeps/edge_npu_resnet50.yaml", "analysis/measured/sets.yaml"]


def _setuptools_major() -> int:
    if importlib.util.find_spec("setuptools") is None:
        return 0
    from importlib.metadata import version
    return int(version("setuptools").split(".")[0])


@pytest.mark.skipif(_setuptools_major() < 68, reason="setuptools >= 68 (pyproject's build requirement) not installed")
def test_wheel_contains_the_shipped_files(tmp_path):
    src = tmp_path / "src"
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    for name in listed.stdout.splitlines():
        path = ROOT / name
        if path.is_file() and not name.startswith(("tests/", "benchmarks/", "docs/")):
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, src / name)
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out)], check=True, capture_output=True)
    names = set(zipfile.ZipFile(next(out.glob("*.whl"))).namelist())
    assert not [f for f in SHIPPED if f not in names]
    specs = {p.name for p in (ROOT / "arch_configs").glob("*.yaml")}
    assert specs == {n.split("/")[-1] for n in names if n.startswith("arch_configs/") and n.count("/") == 1}
    traces = {p.name for p in (ROOT / "workloads" / "traces").glob("*.yaml")}
    assert traces <= {n.split("/")[-1] for n in names if n.startswith("workloads/traces/")}
