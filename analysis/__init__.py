"""Analysis on top of the simulator: sweeps, Pareto fronts, plots, GPU measurement and cross-checks."""
