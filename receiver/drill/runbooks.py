"""Time-compressed copies of the shipped runbooks for a drill, by the same factor as the drill rules.

A drill compresses the alert rules (``receiver.rulegen``); the runbooks' verification windows, ``for:``,
timeouts, cooldowns, cadences, escalation delays and ``max_active_age`` preconditions must shrink by the
same factor or verification would take the production 5-10 minutes. Step timeouts and retries are left
alone (they bound real HTTP calls, not signal windows). A receiver with the ``time_scale`` setting scales
the durations itself; then only the query windows are compressed here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from receiver.errors import ConfigError
from receiver.rulegen import compress_duration, compress_expr

__all__ = ["channel_names", "compress_runbook", "write_compressed_runbooks"]

_FLOOR_S = 1.0


def _duration(value: Any, factor: float, floor: float = _FLOOR_S) -> Any:
    return compress_duration(value, factor, floor) if isinstance(value, str) else value


def _query(value: Any, factor: float) -> Any:
    return compress_expr(value, factor) if isinstance(value, str) else value


def compress_runbook(doc: dict[str, Any], factor: float, *, durations: bool = True) -> dict[str, Any]:
    """A compressed copy of one runbook document (only the time fields named in the module doc).

    ``durations=False`` shrinks only the PromQL range windows: for a receiver with ``time_scale``, which
    scales the runbook durations itself (compressing them here too would apply the factor twice).
    """
    out = dict(doc)
    if not durations:
        if isinstance(out.get("verify"), dict):
            out["verify"] = dict(out["verify"], query=_query(out["verify"].get("query"), factor))
        if isinstance(out.get("evidence"), list):
            out["evidence"] = [
                dict(e, query=_query(e.get("query"), factor)) if isinstance(e, dict) else e
                for e in out["evidence"]
            ]
        return out
    for key in ("cooldown",):
        if key in out:
            out[key] = _duration(out[key], factor)
    verify = out.get("verify")
    if isinstance(verify, dict):
        verify = dict(verify)
        for key in ("for", "timeout"):
            if key in verify:
                verify[key] = _duration(verify[key], factor)
        verify["query"] = _query(verify.get("query"), factor)
        out["verify"] = verify
    if isinstance(out.get("evidence"), list):
        out["evidence"] = [
            dict(e, query=_query(e.get("query"), factor)) if isinstance(e, dict) else e
            for e in out["evidence"]
        ]
    if isinstance(out.get("escalate"), dict) and "after" in out["escalate"]:
        out["escalate"] = dict(out["escalate"], after=_duration(out["escalate"]["after"], factor))
    if isinstance(out.get("comms"), dict) and "cadence" in out["comms"]:
        out["comms"] = dict(out["comms"], cadence=_duration(out["comms"]["cadence"], factor))
    for phase in ("contain", "recover"):
        steps = out.get(phase)
        if not isinstance(steps, list):
            continue
        new_steps = []
        for step in steps:
            if isinstance(step, dict) and isinstance(step.get("preconditions"), dict):
                pre = dict(step["preconditions"])
                if "max_active_age" in pre:
                    pre["max_active_age"] = _duration(pre["max_active_age"], factor)
                step = dict(step, preconditions=pre)
            new_steps.append(step)
        out[phase] = new_steps
    return out


def write_compressed_runbooks(
    source: Path, target: Path, factor: float, *, durations: bool = True
) -> list[Path]:
    """Compress every ``*.yml`` runbook of ``source`` into ``target``; other files are copied as they are."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source.iterdir()):
        if not path.is_file():
            continue
        out = target / path.name
        if path.suffix in (".yml", ".yaml"):
            try:
                doc = yaml.safe_load(path.read_text())
            except yaml.YAMLError as exc:
                raise ConfigError(f"runbook {path}: invalid YAML: {exc}") from None
            if not isinstance(doc, dict):
                raise ConfigError(f"runbook {path}: expected a mapping")
            header = f"# drill copy of {path.name}, time compressed by 1/{factor:g}\n"
            compressed = compress_runbook(doc, factor, durations=durations)
            out.write_text(header + yaml.safe_dump(compressed, sort_keys=False, width=200))
        else:
            out.write_bytes(path.read_bytes())
        written.append(out)
    return written


def channel_names(runbooks_dir: Path) -> list[str]:
    """Every chat channel a runbook names (``comms.channels`` and ``notify`` steps' ``channel``)."""
    names: set[str] = set()
    for path in sorted(runbooks_dir.glob("*.y*ml")):
        doc = yaml.safe_load(path.read_text()) or {}
        if not isinstance(doc, dict):
            continue
        comms = doc.get("comms") or {}
        if isinstance(comms, dict):
            names.update(str(c) for c in comms.get("channels") or [] if isinstance(c, str))
            if isinstance(comms.get("channel"), str):
                names.add(comms["channel"])
        for phase in ("contain", "recover"):
            for step in doc.get(phase) or []:
                if isinstance(step, dict) and isinstance(step.get("channel"), str):
                    names.add(step["channel"])
    return sorted(names)
