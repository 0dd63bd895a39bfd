"""Numba-jitted hot loops: pure functions on numpy arrays and scalars, compiled once (cache=True)."""
