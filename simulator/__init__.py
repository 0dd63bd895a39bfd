"""sparsim: a cycle-approximate simulator for sparse neural-network accelerators.

    from simulator import load_arch, load_trace, simulate
    result = simulate(load_trace("workloads/traces/resnet18.yaml"), load_arch("arch_configs/edge_npu_32x32_os.yaml"))
    result.to_pandas(); result.totals
"""

from simulator.errors import SparsimInputError
from simulator.spec import Arch, arch_from_dict, load_arch
from simulator.trace import Op, Trace, load_trace, save_trace
from simulator.simulate import Result, simulate  # noqa: E402  (rebinds the name over the submodule)

__version__ = "0.1.0"


__all__ = ["SparsimInputError", "Arch", "Op", "Trace", "arch_from_dict", "load_arch", "load_trace",
           "save_trace", "simulate", "Result", "__version__"]
