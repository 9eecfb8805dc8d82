"""Trials: a plan made once, executed by a worker in the engine's own environment, a result.

Split by the process a module runs in: `worker/` (the engine's environment: measure, bench, sweep,
accuracy step, roofline, energy, phase marks) and `orchestrator/` (run, executors, launchers, memory
sampler, pool, replay, environment). At the top level are what both sides share: the plan and the
result (the JSON contracts between the processes), the knob values, the workload and the artifact
cache. `run_trial` (orchestrator/run.py) is the entry for callers; `build_key_for`
(orchestrator/planning.py) gives the study layer the key that identifies a trial's weights without
running it. This file imports nothing, so the worker (`python -m workbench.trials.worker`) pulls in
nothing of the orchestrating side.
"""
