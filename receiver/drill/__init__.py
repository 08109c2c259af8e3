"""Native drills: break a model on purpose on a real local stack and measure how the loop contains it.

``receiver drill --scenario NAME`` (see :mod:`receiver.commands.drill`); programmatic use::

    from receiver.drill import get_scenario, run_drill
    report = run_drill([get_scenario("bad-release")])
    assert report.passed

Modules: ``scenarios`` (what to break, what proves containment), ``stack`` (start/stop the processes),
with ``processes`` (spawn, stop, wait until healthy) and ``stackfiles`` (secrets, receiver configs);
``run`` (inject, watch every hop), with ``probe`` (HTTP reads of the stack), ``observe`` (judge each poll)
and ``results`` (the per-scenario record and the report); ``floors`` (the configured minimum per hop),
``report`` (text/JSON), ``progress`` (the progress line), ``chatsink`` (records chat and pager posts),
``traffic``, ``runbooks`` (time-compressed runbook copies).
"""

from __future__ import annotations

from typing import Any

__all__ = ["SCENARIOS", "get_scenario", "run_drill", "scenario_names"]


def __getattr__(name: str) -> Any:
    # lazy: importing the package must not pull in requests/numpy/sklearn (no work at import time)
    if name in ("SCENARIOS", "get_scenario", "scenario_names"):
        from receiver.drill import scenarios

        return getattr(scenarios, name)
    if name == "run_drill":
        from receiver.drill.run import run_drill

        return run_drill
    raise AttributeError(name)
