"""Run the real SCALE-Sim v3 on a user's own .cfg + topology CSV and write its cycles as JSON.

Why: `sparsim simulate -a scale.cfg` must give SCALE-Sim's cycles for the same file; this
records SCALE-Sim's answer for the .cfg files under tests/data/scalesim_cfg/. Run it with the
interpreter of the separate SCALE-Sim venv (see README.md here)::

    /work/venvs/scalesim/bin/python benchmarks/scalesim_reference/run_cfg.py \
        tests/data/scalesim_cfg/nonsquare_ws.cfg tests/data/scalesim_cfg/topology.csv \
        --out tests/data/scalesim_cfg/nonsquare_ws_reference.json

Only drives the installed `scalesim` package; none of its code is copied.
"""
import argparse
import contextlib
import csv
import json
import os
import sys
import tempfile


def run(cfg: str, topology: str) -> list[dict]:
    """Per-layer "Total Cycles" and "Stall Cycles" of SCALE-Sim's COMPUTE_REPORT.csv."""
    from scalesim.scale_sim import scalesim  # only importable inside the scalesim venv
    with tempfile.TemporaryDirectory(prefix="scalesim_cfg_") as tmp:
        layout = os.path.join(tmp, "layout.csv")  # required file; custom layouts are off
        with open(layout, "w") as f:
            f.write("Layer name,\n")
        with contextlib.redirect_stdout(sys.stderr):
            sim = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topology, layout=layout,
                           input_type_gemm=False)
            sim.run_scale(top_path=tmp)
        run_dir = next(os.path.join(tmp, d) for d in os.listdir(tmp) if os.path.isdir(os.path.join(tmp, d)))
        with open(os.path.join(run_dir, "COMPUTE_REPORT.csv")) as f:
            rows = [[c.strip() for c in r] for r in csv.reader(f)][1:]
    return [{"layer": int(r[0]), "total_cycles": int(r[2]), "stall_cycles": int(r[3])} for r in rows if r]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cfg")
    ap.add_argument("topology")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    from importlib.metadata import version
    result = {"tool": "scalesim", "version": version("scalesim"), "cfg": os.path.basename(args.cfg),
              "topology": os.path.basename(args.topology), "layers": run(args.cfg, args.topology)}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
