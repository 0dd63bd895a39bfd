"""Sparse training: backward passes, optimizer step, memory footprint and a data-parallel step.

Modules: `recipe` (what each pass may use), `backward` (backward ops of a forward op), `build`
(a training-step trace), `footprint` (memory per device), `collectives` (gradient all-reduce),
`step` (simulate one step on a device or system, data parallel).
"""
