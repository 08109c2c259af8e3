"""The ``model-registry`` command line.

::

    model-registry --db reg.db register fraud v1 --artifact models/v1.joblib --healthy --reason "initial"
    model-registry --db reg.db promote fraud v2 --reason "release 42"
    model-registry --db reg.db split fraud v1=50 v2=50 --reason "INC-7"
    model-registry --db reg.db split fraud --to-last-known-good 50 --reason "INC-7"
    model-registry --db reg.db rollback fraud --expected-active v2 --reason "INC-7"
    model-registry --db reg.db tools chat block --reason "INC-9: toxic output"
    model-registry --db reg.db --json show fraud

    model-registry --registry-url mlflow+http://127.0.0.1:5000 list

``--db`` defaults to ``$MODEL_REGISTRY_DB``; ``--registry-url`` (an MLflow Model Registry,
``mlflow+http(s)://host:port``) to ``$MODEL_REGISTRY_URL``, its token from ``--registry-token-file`` or
``$MLFLOW_TRACKING_TOKEN``; ``--actor`` to ``$USER``. Common options may come before or
after the subcommand. Exit status: 0 done; 1 refused or failed (unknown model/version, no healthy
fallback, conflict, registry unavailable); 2 bad usage or invalid input (nothing changed in either case).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from incident_common.errors import RegistryError, error_body
from model_registry.baseline import Baseline
from model_registry.registry import Registry, is_mlflow_target, open_registry
from model_registry.state import AuditEntry, ModelState, VersionInfo

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line input (exit 2)."""


def _default_actor() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _common() -> argparse.ArgumentParser:
    """Options accepted before or after the subcommand (SUPPRESS keeps a later default from winning)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=argparse.SUPPRESS, help="registry file (default: $MODEL_REGISTRY_DB)")
    common.add_argument(
        "--registry-url",
        default=argparse.SUPPRESS,
        help="MLflow Model Registry mlflow+http(s)://host:port (default: $MODEL_REGISTRY_URL)",
    )
    common.add_argument(
        "--registry-token-file",
        default=argparse.SUPPRESS,
        help="file holding the MLflow bearer token (default: $MLFLOW_TRACKING_TOKEN)",
    )
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    common.add_argument("--actor", default=argparse.SUPPRESS, help="who makes the change (default: $USER)")
    return common


def _load_json_arg(text: str, what: str) -> Any:
    """A JSON value given inline or as ``@path``."""
    source = text
    if text.startswith("@"):
        try:
            source = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{what}: cannot read {text[1:]}: {exc.strerror}") from None
    try:
        return json.loads(source)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise UsageError(f"{what}: invalid JSON ({exc.msg} at {where})") from None


def _parse_weights(items: list[str]) -> dict[str, float]:
    weights: dict[str, float] = {}
    for item in items:
        version, sep, value = item.partition("=")
        if not sep or not version:
            raise UsageError(f"split: expected VERSION=PERCENT, got {item!r}")
        try:
            weights[version] = float(value)
        except ValueError:
            raise UsageError(f"split: weight of {version!r} is not a number: {value!r}") from None
    return weights


# -- output -------------------------------------------------------------------------------------------


def _fmt_traffic(traffic: dict[str, float]) -> str:
    return " ".join(f"{v}={w:g}%" for v, w in sorted(traffic.items())) or "-"


def _fmt_tools(blocked: bool) -> str:
    return "blocked" if blocked else "allowed"


def _print_state(state: ModelState) -> None:
    print(f"model:           {state.model}")
    print(
        f"active version:  {state.active_version or '-'}"
        + (f" (since {state.active_since.isoformat()})" if state.active_since else "")
    )
    print(f"traffic:         {_fmt_traffic(state.traffic)}")
    print(f"mode:            {state.mode}")
    print(f"guardrail level: {state.guardrail_level}")
    print(f"risky tools:     {_fmt_tools(state.tools_blocked)}")
    print(f"last known good: {state.last_known_good or '-'}")
    print(f"generation:      {state.generation}")
    print("versions:")
    for v in reversed(state.versions):
        flags = [
            f
            for f, on in (
                ("active", v.version == state.active_version),
                ("unhealthy", v.unhealthy),
                ("served-healthy", v.served_healthy),
            )
            if on
        ]
        print(f"  {v.version:<16} {v.registered_at.isoformat()}  {v.artifact_path}  {' '.join(flags)}")


def _print_version(info: VersionInfo) -> None:
    print(json.dumps(info.to_dict(), indent=2))


def _print_history(entries: list[AuditEntry]) -> None:
    for e in entries:
        print(f"{e.id:>6} {e.at.isoformat()} {e.model} {e.action} by {e.actor}: {e.reason}")
        for key, new in e.after.items():
            old = e.before.get(key)
            if old != new and key != "generation":
                print(f"         {key}: {old!r} -> {new!r}")


# -- handlers -----------------------------------------------------------------------------------------

Handler = Callable[[Registry, argparse.Namespace], Any]


def _register(reg: Registry, a: argparse.Namespace) -> Any:
    metadata = _load_json_arg(a.metadata, "--metadata") if a.metadata else None
    if metadata is not None and not isinstance(metadata, dict):
        raise UsageError("--metadata must be a JSON object")
    baseline = None
    if a.baseline_file:
        baseline = Baseline.from_dict(_load_json_arg("@" + a.baseline_file, "--baseline-file"))
    return reg.register(
        a.model,
        a.version,
        artifact_path=a.artifact,
        baseline=baseline,
        metadata=metadata,
        actor=a.actor,
        reason=a.reason,
        healthy=a.healthy,
    )


def _split(reg: Registry, a: argparse.Namespace) -> Any:
    if a.to_last_known_good is not None:
        if a.weights:
            raise UsageError("split: give either VERSION=PERCENT pairs or --to-last-known-good, not both")
        return reg.split_to_last_known_good(a.model, a.to_last_known_good, actor=a.actor, reason=a.reason)
    if not a.weights:
        raise UsageError("split: give VERSION=PERCENT pairs (e.g. v1=50 v2=50) or --to-last-known-good N")
    return reg.split(a.model, _parse_weights(a.weights), actor=a.actor, reason=a.reason)


def _show(reg: Registry, a: argparse.Namespace) -> Any:
    return reg.version(a.model, a.version) if a.version else reg.state(a.model)


def _list(reg: Registry, a: argparse.Namespace) -> Any:
    return [reg.state(m) for m in reg.models()]


def _check(reg: Registry, a: argparse.Namespace) -> Any:
    problems = reg.check(a.model)
    if problems:
        raise RegistryError("registry check failed", problems)
    return {"ok": True}


_HANDLERS: dict[str, Handler] = {
    "register": _register,
    "promote": lambda r, a: r.promote(a.model, a.version, actor=a.actor, reason=a.reason),
    "rollback": lambda r, a: r.rollback(
        a.model, actor=a.actor, reason=a.reason, expected_active=a.expected_active
    ),
    "split": _split,
    "mode": lambda r, a: r.set_mode(a.model, a.mode, actor=a.actor, reason=a.reason),
    "guardrail": lambda r, a: r.set_guardrail(a.model, a.level, actor=a.actor, reason=a.reason),
    "tools": lambda r, a: r.set_tools_blocked(a.model, a.setting == "block", actor=a.actor, reason=a.reason),
    "mark-unhealthy": lambda r, a: r.mark_unhealthy(a.model, a.version, actor=a.actor, reason=a.reason),
    "mark-healthy": lambda r, a: r.mark_healthy(a.model, a.version, actor=a.actor, reason=a.reason),
    "mark-served-healthy": lambda r, a: r.mark_served_healthy(
        a.model, a.version, actor=a.actor, reason=a.reason
    ),
    "list": _list,
    "history": lambda r, a: r.history(a.model, a.limit),
    "show": _show,
    "check": _check,
}
_READ_ONLY = {"list", "history", "show", "check"}


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="model-registry",
        parents=[common],
        description="Model versions, active version, traffic, serving mode, guardrail, risky-tool switch "
        "and audit history.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add(
        name: str, help_text: str, *, model: bool = True, version: bool = False, change: bool = True
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        if model:
            p.add_argument("model")
        if version:
            p.add_argument("version")
        if change:
            p.add_argument("--reason", required=True, help="why (incident id, operator note); audited")
        return p

    p = add("register", "register a new version (not promoted)", version=True)
    p.add_argument("--artifact", required=True, help="artifact path or URI")
    p.add_argument("--metadata", help="JSON object, or @file (slo_latency_seconds, latency_buckets, ...)")
    p.add_argument("--baseline-file", help="JSON file with the baseline statistics")
    p.add_argument(
        "--healthy",
        action="store_true",
        help="record that this version already served healthily (a last-known-good candidate)",
    )
    add("promote", "make a version active with 100%% of traffic", version=True)
    p = add("rollback", "mark the active version unhealthy and activate the last known good")
    p.add_argument("--expected-active", help="refuse (exit 1) unless this version is still active")
    p = add("split", "set traffic weights (percent, summing to 100)")
    p.add_argument("weights", nargs="*", metavar="VERSION=PERCENT")
    p.add_argument(
        "--to-last-known-good",
        type=float,
        metavar="PERCENT",
        help="send PERCENT to the last known good and the rest to the active version",
    )
    p = add("mode", "set the serving mode")
    p.add_argument("mode", choices=["normal", "fallback"])
    p = add("guardrail", "set the guardrail level")
    p.add_argument("level", type=int, choices=range(4))
    p = add("tools", "block or allow risky tools (web_browse, code_exec, send_email, file_write, ...)")
    p.add_argument("setting", choices=["block", "allow"])
    add("mark-unhealthy", "mark a version unhealthy (never rolled back to)", version=True)
    add("mark-healthy", "clear an unhealthy mark", version=True)
    add("mark-served-healthy", "record that a version served healthily", version=True)
    add("list", "list models", model=False, change=False)
    p = add("history", "audit history, newest first", model=False, change=False)
    p.add_argument("model", nargs="?")
    p.add_argument("--limit", type=int, default=20)
    p = add("show", "show a model's state, or one version with its baseline", change=False)
    p.add_argument("version", nargs="?")
    p = add("check", "verify the registry's invariants", model=False, change=False)
    p.add_argument("model", nargs="?")
    return parser


def _to_jsonable(result: Any) -> Any:
    if isinstance(result, list):
        return [_to_jsonable(r) for r in result]
    if hasattr(result, "to_dict"):
        return result.to_dict()
    return result


def _print_human(command: str, result: Any) -> None:
    if isinstance(result, ModelState):
        _print_state(result)
    elif isinstance(result, VersionInfo):
        _print_version(result)
    elif command == "history":
        _print_history(result)
    elif command == "list":
        for st in result:
            print(
                f"{st.model:<20} active={st.active_version or '-'} traffic={_fmt_traffic(st.traffic)} "
                f"mode={st.mode} guardrail={st.guardrail_level} tools={_fmt_tools(st.tools_blocked)} "
                f"lkg={st.last_known_good or '-'}"
            )
    elif command == "rollback":
        print(f"rolled back {result.model}: {result.from_version} (now unhealthy) -> {result.to_version}")
    elif command == "check":
        print("ok")


def _fail(args: argparse.Namespace, status: int, kind: str, message: str, problems: list[Any]) -> int:
    if getattr(args, "json", False):
        print(json.dumps(error_body(status, kind, message, problems)), file=sys.stderr)
    else:
        print(f"model-registry: error: {message}", file=sys.stderr)
        for p in problems:
            if isinstance(p, str) and p in message:
                continue  # already said in the message
            print(f"  - {p if isinstance(p, str) else json.dumps(p)}", file=sys.stderr)
    return EXIT_USAGE if status == 400 else EXIT_REFUSED


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    url = getattr(args, "registry_url", None) or os.environ.get("MODEL_REGISTRY_URL")
    db = getattr(args, "db", None) or os.environ.get("MODEL_REGISTRY_DB")
    args.actor = getattr(args, "actor", None) or _default_actor()
    if url and getattr(args, "db", None):
        return _fail(args, 400, "UsageError", "give either --db or --registry-url, not both", [])
    if url and not is_mlflow_target(url):
        return _fail(
            args, 400, "UsageError", f"--registry-url must look like mlflow+http://host:5000, got {url!r}", []
        )
    target = url or db
    if not target:
        return _fail(
            args,
            400,
            "UsageError",
            "no registry: pass --db PATH or --registry-url mlflow+http://HOST:PORT "
            "(or set MODEL_REGISTRY_DB / MODEL_REGISTRY_URL)",
            [],
        )
    try:
        reg = open_registry(
            target,
            create=args.command not in _READ_ONLY,
            token_file=getattr(args, "registry_token_file", None),
        )
        result = _HANDLERS[args.command](reg, args)
    except UsageError as exc:
        return _fail(args, 400, "UsageError", str(exc), [])
    except RegistryError as exc:
        status = exc.http_status if not (args.command == "check" and exc.problems) else 409
        return _fail(args, status, type(exc).__name__, exc.message, exc.problems)
    if getattr(args, "json", False):
        print(json.dumps(_to_jsonable(result), indent=2))
    else:
        _print_human(args.command, result)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
