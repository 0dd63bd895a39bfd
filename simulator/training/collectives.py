"""Gradient synchronisation over an interconnect: collective times and their overlap with backward.

Times follow the alpha-beta cost model of Thakur, Rabenseifner and Gropp 2005 ("Optimization of
Collective Communication Operations in MPICH", IJHPCA 19(1)) for p ranks, n bytes, per-message
latency alpha and per-rank link bandwidth B (reduction arithmetic not charged):
- ring all-reduce (reduce-scatter then all-gather): 2(p-1) alpha + 2 (p-1)/p n / B;
- tree all-reduce (binomial reduce then broadcast): 2 ceil(log2 p) (alpha + n / B);
- ring reduce-scatter or all-gather alone: (p-1) alpha + (p-1)/p n / B.
Overlap (`overlap_sync`): gradients become ready during backward and are grouped in buckets of
at least `bucket_bytes` (PyTorch DDP's gradient buckets, 25 MB by default); a bucket's
collective starts once its last gradient is ready and the link is free (one collective at a
time, as on one communication stream). This is a SimPy process model of that queue.
Approximation: one link per rank, no congestion between ranks.

SM contention (`sm_contention_s`): NCCL runs a collective as a kernel with one CTA per channel,
each holding one SM for the collective's duration (NCCL_MIN/MAX_NCHANNELS and the communicator's
CTA policy exist to trade this against overlapped compute: NCCL user guide, environment variables
and "NCCL Communicator CTA Policy Flags"). While it runs, overlapped compute kernels get the other
SMs, so backward work done during an overlapped window of w seconds falls short by w x c / S and
is finished afterwards (c channel SMs of S). Approximation: first order (the longer backward does
not move the gradient-ready times), HBM bandwidth taken by the collective is not counted.
"""

from __future__ import annotations

import math

import simpy

from simulator.errors import SparsimInputError

COLLECTIVES = ("ring", "tree")


def allreduce_s(nbytes: float, ranks: int, bytes_per_s: float, latency_s: float, algorithm: str = "ring") -> float:
    """Seconds for an all-reduce of `nbytes` over `ranks` ranks."""
    if ranks <= 1 or nbytes <= 0:
        return 0.0
    if algorithm == "ring":
        return 2 * (ranks - 1) * latency_s + 2.0 * (ranks - 1) / ranks * nbytes / bytes_per_s
    if algorithm == "tree":
        return 2 * math.ceil(math.log2(ranks)) * (latency_s + nbytes / bytes_per_s)
    raise SparsimInputError(f"unknown collective '{algorithm}'", field="--collective", hint="ring or tree")


def half_collective_s(nbytes: float, ranks: int, bytes_per_s: float, latency_s: float) -> float:
    """Seconds for a ring reduce-scatter or all-gather of `nbytes` (the full tensor's size)."""
    if ranks <= 1 or nbytes <= 0:
        return 0.0
    return (ranks - 1) * latency_s + (ranks - 1) / ranks * nbytes / bytes_per_s


def buckets(ready: list[tuple[float, float]], bucket_bytes: float) -> list[tuple[float, float]]:
    """(ready time, bytes) of gradient buckets, filled in the order gradients become ready."""
    out, t, acc = [], 0.0, 0.0
    for when, nbytes in sorted(ready):
        t, acc = max(t, when), acc + nbytes
        if acc >= bucket_bytes:
            out.append((t, acc))
            acc = 0.0
    if acc > 0:
        out.append((t, acc))
    return out


def sm_contention_s(overlapped_s: float, comm_sms: int, sm_count: int) -> float:
    """Extra compute seconds when `comm_sms` of `sm_count` SMs run collectives for `overlapped_s`."""
    if overlapped_s <= 0 or comm_sms <= 0 or sm_count <= 0:
        return 0.0
    return overlapped_s * min(comm_sms, sm_count) / sm_count


def overlap_sync(ready: list[tuple[float, float]], seconds_for, bucket_bytes: float) -> tuple[float, float]:
    """(time the last bucket's collective ends, link busy seconds) when buckets queue on one link."""
    env = simpy.Environment()
    link = simpy.Resource(env, capacity=1)
    state = {"end": 0.0, "busy": 0.0}

    def sync(when: float, nbytes: float):
        yield env.timeout(when)
        with link.request() as req:
            yield req
            dt = seconds_for(nbytes)
            yield env.timeout(dt)
            state["busy"] += dt
            state["end"] = max(state["end"], env.now)

    for when, nbytes in buckets(ready, bucket_bytes):
        env.process(sync(when, nbytes))
    env.run()
    return state["end"], state["busy"]


__all__ = ["allreduce_s", "half_collective_s", "overlap_sync", "buckets", "COLLECTIVES"]
