"""The flags every system-level command shares: which system to run on, where its timelines go.

Used by `sparsim system` (`simulator.cli_system`) and `sparsim llm` (`workloads.cli_llm`); importing
this module registers no command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from simulator.errors import SparsimInputError, nearest


def target_from_flags(arch: Optional[Path], system: Optional[Path], cores: int, set_: list[str],
                      policy: Optional[str], microbatches: Optional[int] = None):
    """A System from --system, or --cores copies of --arch."""
    from simulator.spec import load_arch
    from simulator.system import POLICIES, load_system, replicate
    if microbatches is not None and microbatches < 1:
        raise SparsimInputError(f"microbatches must be >= 1 (got {microbatches})", field="--microbatches")
    if (arch is None) == (system is None):
        raise SparsimInputError("give exactly one of --arch and --system", field="--arch",
                                hint="--arch A.yaml [--cores N] or --system S.yaml")
    if policy is not None and policy not in POLICIES:
        guess = nearest(policy, POLICIES)
        raise SparsimInputError(f"unknown policy '{policy}'", field="--policy",
                                hint=(f"did you mean '{guess}'? " if guess else "") + "allowed: " + ", ".join(POLICIES))
    if system is not None:
        if cores != 1 or set_:
            raise SparsimInputError(f"{'--cores' if cores != 1 else '--set'} applies to --arch, not --system",
                                    field="--cores" if cores != 1 else "--set",
                                    hint="set core counts and arch overrides in the system file (cores[].count, "
                                         "cores[].overrides)")
        target = load_system(system)
        changes = {}
        if policy:
            changes["policy"] = policy
        if microbatches:
            changes["microbatches"] = microbatches
        return target.with_(**changes) if changes else target
    if cores < 1:
        raise SparsimInputError(f"core count must be at least 1 (got {cores})", field="--cores",
                                hint="use --cores N with N >= 1")
    return replicate(load_arch(arch, list(set_)), cores, policy=policy or "layer_by_layer",
                     microbatches=microbatches or 1)


def write_timelines(intervals, cores, name, timeline: Optional[Path], gantt: Optional[Path],
                    say: Callable[[str], None] | None = None) -> None:
    """Write the Chrome trace and/or the Gantt chart; `say` (when given) is told each file written."""
    from simulator.timeline import write_chrome_trace, write_gantt
    if timeline:
        write_chrome_trace(timeline, intervals, cores, name=name)
        if say is not None:
            say(f"wrote {timeline} (open in https://ui.perfetto.dev)")
    if gantt:
        write_gantt(gantt, intervals, cores, title=name)
        if say is not None:
            say(f"wrote {gantt}")
