"""Learning benchmarks: suites of training runs, a resumable parallel runner and the statistics that summarise them.

- :mod:`benchmarks.suites`: what to run (algorithms x tasks x seeds, budgets).
- :mod:`benchmarks.learning`: the runner, ``python -m benchmarks.learning --suite quick``.
- :mod:`benchmarks.aggregate`: final scores, IQM, stratified bootstrap CIs, normalisation, tables, curves and plots.
- ``benchmarks/sb3_agent.py``: Stable-Baselines3 baselines behind the agents' command-line contract.
"""
