"""Board power you can compare across platforms: average power, J/token, and the TDP check.

Energy in sparsim is action counts x energy per action plus static power x time
(`simulator.energy`). What makes a GPU and an FPGA comparable is that both carry their
board's standing power, not only the switching energy of the work:

- **GPU** (`compute.power`, `simulator.engines.gpu.BoardPower`): board idle power (clocks up,
  a context alive) for the whole run, plus `sm_active_w` per SM while a kernel occupies it;
  tensor math is charged per MAC (`energy.mac_pj`) and L2/HBM traffic per bit (the memory
  levels' `read_energy_pj_per_bit`). The numbers and their sources are in each spec's header
  and in docs/power.md.
- **FPGA** (`compute.device`, `simulator.engines.dsp_chain`): the device's static power for the
  whole run plus the per-action energies of DSP, BRAM/URAM and off-chip traffic.

`board_tdp_w` is the power the board may draw (GPU: the spec's `power.tdp_w`; FPGA: the card's
maximum total power from its data sheet, `CARD_MAX_POWER_W`). `summary` turns an energy and a
time into average power, J/token (tokens of an LLM pass: `trace_tokens`) and whether the
average stays within the TDP. A result above
the TDP is not clipped: the note says the board would lower its clock, which the timing model
does not do (an approximation the note states).
"""

from __future__ import annotations

import math

from simulator.spec import Arch

# Maximum total board power of FPGA cards, by part (data sheets). A part whose card is not listed
# has no TDP check.
CARD_MAX_POWER_W: dict[str, tuple[float, str]] = {
    "xcu280": (225.0, "AMD DS963 Alveo U280 data sheet: maximum total power 225 W"),
    "xcvu9p": (225.0, "AMD DS962 Alveo U200 data sheet (same XCVU9P as the VCU1525): maximum total power 225 W"),
}


def board_tdp_w(arch: Arch) -> float | None:
    """The board power limit of one core of `arch` in watts, or None when the spec does not give one."""
    return arch.compute.board_tdp_w


def system_tdp_w(archs: list[Arch]) -> float | None:
    """Sum of the cores' board limits; None if any core lacks one."""
    limits = [board_tdp_w(a) for a in archs]
    return None if not limits or any(x is None for x in limits) else float(sum(limits))


def trace_tokens(trace) -> int | None:
    """Tokens one pass of an LLM trace processes (ops marked prefill/decode): the largest GEMM M
    (batch for a decode step, batch x prompt for a prefill). None for other workloads."""
    if not any(op.phase in ("prefill", "decode") for op in trace.ops):
        return None
    m = [g.M for op in trace.ops if op.kind in ("gemm", "moe_gemm") for g in op.gemm_shapes()]
    return max(m) if m else None


def summary(energy_j: float, seconds: float, tdp_w: float | None, tokens: float | None = None) -> dict:
    """Average power, J/token and the TDP check of a run that used `energy_j` over `seconds`."""
    average = energy_j / seconds if seconds > 0 else math.nan
    out = {"average_power_w": average, "board_tdp_w": tdp_w,
           "within_tdp": None if tdp_w is None or math.isnan(average) else bool(average <= tdp_w * (1 + 1e-9))}
    if tokens:
        out["energy_per_token_j"] = energy_j / tokens
    if out["within_tdp"] is False:
        out["power_note"] = (f"average power {average:.0f} W exceeds the board limit {tdp_w:.0f} W: the board "
                             "would lower its clock, which the timing model does not do")
    return out


__all__ = ["CARD_MAX_POWER_W", "board_tdp_w", "system_tdp_w", "trace_tokens", "summary"]
