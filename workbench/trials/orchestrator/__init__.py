"""The orchestrating side of a trial: plan it, launch the worker where the engine lives, watch it.

`run` (the entry: knobs resolved once, feasibility, an executor), the executors (a watched worker
process, this process for grid recording, or a recorded grid's `replay`), the launchers (this
interpreter, another environment, a container), the memory sampler outside the worker, the model
pool and the environment record. The in-process executor calls the worker's `measure` directly; the
worker never imports this package.
"""
