"""System level: N cores, their DMA engines and one shared DRAM, simulated with SimPy.

What is modelled
- Cores: each runs its own arch (any engine kind; heterogeneous systems mix them). Per-op
  compute time and DRAM traffic come from the engine's `OpCost` for that core's arch
  (`load_engine(kind).estimate(op, arch)`), never re-derived here.
- Work is issued at tile-group granularity: an op (or the shard of it a core runs) is cut
  into `tile_groups` equal groups. A DMA process fetches group k+1 while the core computes
  group k when the core's off-chip level is double-buffered (two buffer slots), else
  fetch and compute alternate. The per-group compute time is solved from the analytic op
  time T and the uncontended per-group transfer time x, so that the pipeline
  x + (G-1)·max(c, x) + c (double-buffered) or G·(x + c) (single) equals T exactly: with
  one core and an uncontended memory the SimPy answer equals `simulator.simulate`.
- Shared DRAM: a fluid bandwidth server. Transfers in flight share the total bandwidth
  max-min fairly, each capped by its core's port (its arch's off-chip bandwidth), and the
  shares are re-divided whenever a transfer starts or ends, so contention stretches them:
  two cores streaming at full bandwidth each take 2x as long as one alone. Channels are
  taken as address-interleaved, so only their total bandwidth matters. A transfer holds
  one of its core's DMA engines; a job keeps one fetch in flight (double buffering), so
  extra engines only let a NoC hand-off overlap a fetch, never exceed the core's port.
- Optional NoC between cores: one shared link, used by layer pipelining to hand a
  stage's output to the next core.
- Optional global buffer: an on-chip SRAM shared by all cores (capacity, total bandwidth).
  An op's output is kept there instead of making a DRAM round trip when its only consumer
  runs next and the tensor fits (`simulator.graph.global_buffer_plan`: every op's kept
  inputs plus its kept output must fit together). The producer's shards write their part
  of the tensor to the buffer and the consumer's shards read what they need from it (a
  shard reads the share of the tensor its activation operand is of the whole op's), so
  those bytes leave the DRAM, the op's analytic memory stall shrinks by them over the
  core's port, and they move over the buffer's own fluid bandwidth server instead. A tile
  group's DRAM and buffer transfers overlap when the core has two or more DMA engines and
  follow each other with one. Buffer accesses cost the cited SRAM energy per bit for its
  capacity (`simulator.energy`), unless the spec gives one, plus its leakage. Layer
  pipelining does not use it (stage hand-offs go over the NoC).

Scheduling policies (`policy`)
- `layer_by_layer`: ops in dependency order; each op is split over all cores and all
  cores wait for the slowest before the next op (a barrier). The cut (`split_dims`: GEMM
  columns, rows or batch; conv filters/groups, output rows or batch; attention KV-head
  groups, batch or query rows; MoE columns; vector elements) is the one with the lowest
  estimate max(slowest share, all shares' DRAM bytes / shared bandwidth); heterogeneous
  cores also try shares in proportion to their speed on the op, and the whole op on the
  fastest core.
- `pipeline`: layers (ops sharing a `layer`; an op/layer repeated r times counts as r
  layers) are cut into contiguous stages balanced on the first core's analytic time,
  one stage per core; `microbatches` copies of the workload flow through the stages.
- `expert_parallel`: like layer_by_layer, except that a `moe_gemm` runs each expert
  whole on the core `placement` names (default: expert e on core e mod N), with the
  trace's token counts, so routing skew shows up as load imbalance.
- `graph`: list scheduling on the op DAG (`simulator.graph`): each op runs whole on the
  first free core once its producers finish, so parallel branches overlap.

Approximations: DRAM writes share the same bandwidth as reads; transfers are uniform
over an op's tile groups; no bank conflicts, row-buffer effects or channel imbalance;
partitions are picked from that small set of cuts by an uncontended estimate; no
finer, tile-aware load balancing.
Repeated ops (`repeat x (1 - skip_probability)` executions) run as one job with summed
time and bytes. The global buffer's capacity is checked per op in a barrier-separated
order; the graph policy may run branches whose kept tensors exceed it together (not
checked). Barrier-separated ops (layer_by_layer, expert_parallel) are simulated once per
distinct op and reused, which keeps runs to seconds.

Modules: `spec` (the YAML schema, `System`, `replicate`), `sharding` (how an op is cut over
cores), `jobs` (one core's share of an op, costed by its engine), `machine` (the SimPy
shared-DRAM machine), one module per policy (`barrier`: layer_by_layer and expert_parallel,
`pipeline`, `graph_policy`), each returning a typed `ScheduleOutcome` (`result`), and `run`
(`simulate_system`).
"""

from __future__ import annotations

from simulator.system.spec import (MAX_MICROBATCHES, POLICIES, Core, CoreGroupSpec, DramSpec, GlobalBufferSpec,
                                   NocSpec, Policy, System, SystemSpec, load_system, replicate, system_from_dict)
from simulator.system.result import Interval, ScheduleOutcome, SystemResult
from simulator.system.jobs import GlobalBufferUse, Job, make_job
from simulator.system.sharding import expert_ops, shard_op, shard_slots, split_dims
from simulator.system.run import simulate_system

__all__ = ["SystemSpec", "CoreGroupSpec", "DramSpec", "NocSpec", "Core", "System", "replicate", "load_system",
           "system_from_dict", "simulate_system", "SystemResult", "Interval", "Job", "make_job", "shard_op",
           "expert_ops", "split_dims", "shard_slots", "POLICIES", "Policy", "MAX_MICROBATCHES", "GlobalBufferSpec",
           "GlobalBufferUse", "ScheduleOutcome"]
