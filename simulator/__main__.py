"""`python -m simulator ...` runs the `sparsim` command line."""

from simulator.cli import main

main()
