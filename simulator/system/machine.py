"""The shared-DRAM machine in SimPy: a fluid bandwidth server, per-core DMA engines, the NoC and
the tile-group pipeline that runs one job (see `simulator.system` for what is modelled)."""

from __future__ import annotations

import math

import simpy

from simulator.system.spec import System
from simulator.system.result import Interval
from simulator.system.jobs import Job


class _Flow:
    __slots__ = ("remaining", "total", "cap", "rate", "event")

    def __init__(self, nbytes: float, cap: float, event):
        self.remaining = self.total = nbytes
        self.cap = cap
        self.rate = 0.0
        self.event = event


class SharedDram:
    """A fluid bandwidth server: active transfers share the bandwidth max-min fairly, each capped
    by its core's port; every arrival or completion re-divides it (processor sharing)."""

    def __init__(self, env: simpy.Environment, bytes_per_s: float):
        self.env = env
        self.bytes_per_s = bytes_per_s
        self.flows: list[_Flow] = []
        self.last_s = 0.0
        self.version = 0
        self.busy_s = 0.0

    def _advance(self) -> None:
        dt = self.env.now - self.last_s
        if dt > 0:
            used = 0.0
            for f in self.flows:
                f.remaining -= f.rate * dt
                used += f.rate
            self.busy_s += dt * used / self.bytes_per_s
        self.last_s = self.env.now

    def _reschedule(self) -> None:
        left = self.bytes_per_s
        flows = sorted(self.flows, key=lambda f: f.cap)
        for i, f in enumerate(flows):       # water-filling: slow ports take their cap, the rest share
            f.rate = min(f.cap, left / (len(flows) - i))
            left -= f.rate
        self.version += 1
        if flows:
            wait = min(max(f.remaining, 0.0) / f.rate for f in flows)
            self.env.process(self._wake(self.version, wait))

    def _wake(self, version: int, wait: float):
        yield self.env.timeout(wait)
        if version != self.version:
            return
        self._advance()
        nearest_done = min(self.flows, key=lambda f: f.remaining / f.rate)
        for f in list(self.flows):
            if f is nearest_done or f.remaining <= 1e-9 * f.total:
                self.flows.remove(f)
                f.event.succeed()
        self._reschedule()

    def transfer(self, nbytes: float, cap_bytes_per_s: float):
        self._advance()
        flow = _Flow(nbytes, cap_bytes_per_s, self.env.event())
        self.flows.append(flow)
        self._reschedule()
        yield flow.event


class Machine:
    """Shared DRAM, per-core DMA engines and the NoC, plus the tile-group pipeline."""

    def __init__(self, system: System, env: simpy.Environment):
        self.system = system
        self.env = env
        self.dram = None if math.isinf(system.dram_bytes_per_s) else SharedDram(env, system.dram_bytes_per_s)
        self.gb = SharedDram(env, system.global_buffer_bytes_per_s) if system.has_global_buffer else None
        self.dma = [simpy.Resource(env, capacity=c.dma_engines) for c in system.cores]
        self.noc = simpy.Resource(env, capacity=1) if system.noc_bytes_per_s else None
        self.intervals: list[Interval] = []

    @property
    def dram_busy_s(self) -> float:
        return self.dram.busy_s if self.dram is not None else 0.0

    @property
    def gb_busy_s(self) -> float:
        return self.gb.busy_s if self.gb is not None else 0.0

    def gb_transfer(self, core: int, nbytes: float):
        """Move `nbytes` between the global buffer and `core` through one of its DMA engines."""
        if nbytes <= 0 or self.gb is None:
            return
        with self.dma[core].request() as req:
            yield req
            yield from self.gb.transfer(nbytes, math.inf)

    def group_transfer(self, core: int, dram_bytes: float, gb_bytes: float):
        """One tile group's DRAM and global-buffer traffic: concurrent on two DMA engines, else in turn."""
        if dram_bytes > 0 and gb_bytes > 0 and self.system.cores[core].dma_engines >= 2:
            yield self.env.process(self.transfer(core, dram_bytes)) & self.env.process(self.gb_transfer(core, gb_bytes))
        else:
            yield from self.transfer(core, dram_bytes)
            yield from self.gb_transfer(core, gb_bytes)

    def transfer(self, core: int, nbytes: float):
        """Move `nbytes` between the shared DRAM and `core` through one of its DMA engines."""
        if nbytes <= 0:
            return
        port = self.system.cores[core].port_bytes_per_s
        with self.dma[core].request() as req:
            yield req
            if self.dram is None:
                if not math.isinf(port):
                    yield self.env.timeout(nbytes / port)
            else:
                yield from self.dram.transfer(nbytes, port)

    def noc_transfer(self, core: int, nbytes: float):
        if self.noc is None or nbytes <= 0:
            return
        with self.dma[core].request() as dma, self.noc.request() as link:
            yield dma
            yield link
            yield self.env.timeout(nbytes / self.system.noc_bytes_per_s)

    def run_job(self, job: Job):
        """Tile-group pipeline of one job; its uncontended duration is exactly `job.time_s`."""
        env = self.env
        core = self.system.cores[job.core]
        start = env.now
        groups = self.system.tile_groups
        port = core.port_bytes_per_s
        moves_dram = job.dram_bytes > 0 and not (math.isinf(port) and math.isinf(self.system.dram_bytes_per_s))
        moves_gb = job.gb_bytes > 0 and self.gb is not None
        if not (moves_dram or moves_gb):
            yield env.timeout(job.time_s)
        else:
            per_group = job.dram_bytes / groups if moves_dram else 0.0
            gb_group = job.gb_bytes / groups if moves_gb else 0.0
            x_dram = 0.0 if math.isinf(port) else per_group / port   # uncontended transfer of one group
            x_gb = gb_group / self.system.global_buffer_bytes_per_s if moves_gb else 0.0
            x = max(x_dram, x_gb) if core.dma_engines >= 2 else x_dram + x_gb
            T = job.time_s
            if core.double_buffered:
                # x + (G-1) max(c, x) + c = T, solved for the per-group compute c >= 0
                c = (T - x) / groups if T >= (groups + 1) * x else max(0.0, T - groups * x)
                fetched = [env.event() for _ in range(groups)]
                computed = [env.event() for _ in range(groups)]

                def dma():
                    for k in range(groups):
                        if k >= 2:
                            yield computed[k - 2]      # two buffer slots: wait for the slot to free up
                        yield from self.group_transfer(job.core, per_group, gb_group)
                        fetched[k].succeed()

                env.process(dma())
                for k in range(groups):
                    yield fetched[k]
                    yield env.timeout(c)
                    computed[k].succeed()
            else:
                c = max(0.0, T / groups - x)
                for _ in range(groups):
                    yield from self.group_transfer(job.core, per_group, gb_group)
                    yield env.timeout(c)
        self.intervals.append(Interval(core.name, job.label, job.op, start, env.now))


def run_parallel(system: System, jobs: list[Job]) -> tuple[float, list[Interval], float, float]:
    """Run barrier-free jobs from t=0 (jobs on one core in sequence);
    return (makespan, intervals, DRAM busy, global-buffer busy)."""
    env = simpy.Environment()
    machine = Machine(system, env)
    per_core: dict[int, list[Job]] = {}
    for job in jobs:
        per_core.setdefault(job.core, []).append(job)

    def core_proc(js):
        for job in js:
            yield from machine.run_job(job)

    for js in per_core.values():
        env.process(core_proc(js))
    env.run()
    return env.now, machine.intervals, machine.dram_busy_s, machine.gb_busy_s
