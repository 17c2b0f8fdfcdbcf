"""Sweeps: the TOML config, built-in tasks, run folders (atomic chunks, resume, shards),
the report and its figures.

May import every floor below: ``jaxbp.util``, ``nn``, ``grads``, ``training``, ``many``,
``teach``.
"""

from ._config import SweepConfig
from ._report import add_report_section
from ._runs import Estimate, Run, estimate_sweep, finish_sweep, load_run, report_run, run_sweep
from ._tasks import TASKS, Task, load_task

__all__ = [
    "TASKS",
    "Estimate",
    "Run",
    "SweepConfig",
    "Task",
    "add_report_section",
    "estimate_sweep",
    "finish_sweep",
    "load_run",
    "load_task",
    "report_run",
    "run_sweep",
]
