"""The worker side of a trial: what runs in the engine's own environment (`python -m workbench.trials.worker`).

Build or fetch, open, benchmark (`bench`, its sweeps in `sweep`), the accuracy step, the roofline, the
energy meter and the phase marks the orchestrator's memory sampler splits by. Nothing here imports
`workbench.trials.orchestrator`: the worker reads its plan (`trials/plan.py`) and writes its result
(`trials/result.py`), the two contracts at the package's top level with the knob values, the
workload and the artifact cache that both sides use.
"""
