"""The study runner: one command runs a whole study (``python study.py experiments/<name>``).

A study file (``experiments/<name>/study.yaml``, format in ``experiments/README.md``) names rows; the
runner turns them into a graph of steps (``build`` → ``train/<row>/s<seed>`` → ``export/<row>/s<seed>`` →
``eval/<row>/s<seed>`` → ``report``), fingerprints each step's resolved inputs, skips finished steps whose
fingerprint is unchanged and runs the rest: training (and evaluation) rows of one level as one Hydra
multirun, so ``hydra/launcher=joblib`` or ``submitit_slurm`` parallelises them. Modules:

- ``spec``: loading and validating the study file (structure, row references, cycles);
- ``configs``: checking every override against ``conf/`` (Hydra compose) and writing row overlays;
- ``graph``: the steps, their dependencies and resolved commands;
- ``state``: fingerprints, ``step.json`` records and the plan (done / stale / to do);
- ``execute``: running steps (subprocesses, multiruns, signals) and the report;
- ``hydra_callback``: the Hydra callback that marks each multirun job's end;
- ``cli``: ``python study.py`` (see docs/study.md).
"""
