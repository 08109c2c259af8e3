"""``model-server``: serve a model from the registry (the default command), or bootstrap the demo versions.

A mistake a user can make (unknown model, bad interval, unreachable registry) is a one-line error and a
non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from model_server.server import ModelServer, ServerConfig
from model_server.web import create_app

__all__ = ["main"]

log = logging.getLogger("model_server")

_DESCRIPTION = "The demo model server: a registry-following scikit-learn classifier with the metric contract."


def _read_token(path: str | None) -> str | None:
    if path:
        token = Path(path).read_text().strip()
        if not token:
            raise SystemExit(f"admin token file {path} is empty")
        return token
    return os.environ.get("MODEL_SERVER_ADMIN_TOKEN") or None


def _registry_arguments(command: argparse.ArgumentParser, url_help: str) -> None:
    """``--registry-db FILE`` or ``--registry-url URL``, exactly one, both into ``registry_db``."""
    where = command.add_mutually_exclusive_group(required=True)
    where.add_argument("--registry-db", help="SQLite registry file")
    where.add_argument("--registry-url", dest="registry_db", metavar="URL", help=url_help)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="model-server", description=_DESCRIPTION)
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="serve a model from the registry (the default)")
    _registry_arguments(serve, "MLflow Model Registry, mlflow+http(s)://host:port")
    serve.add_argument(
        "--registry-token-file",
        help="file holding the MLflow bearer token (default: env MLFLOW_TRACKING_TOKEN)",
    )
    serve.add_argument("--model", required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8081)
    serve.add_argument(
        "--admin-token-file",
        help="file holding the admin bearer token "
        "(default: env MODEL_SERVER_ADMIN_TOKEN; neither = admin API disabled)",
    )
    serve.add_argument("--poll-interval", type=float, default=0.5, help="seconds between registry polls")
    serve.add_argument("--threads", type=int, default=8)
    serve.add_argument(
        "--psi-window",
        type=int,
        default=1000,
        help="inputs in the sliding PSI window (size it to a few minutes of traffic)",
    )
    serve.add_argument(
        "--psi-min-samples", type=int, default=100, help="fewest inputs in the window before PSI is exported"
    )
    boot = sub.add_parser("bootstrap", help="train the demo versions, save artifacts, register them")
    _registry_arguments(boot, "MLflow Model Registry, mlflow+http(s)://host:port (needs the mlflow extra)")
    boot.add_argument("--model", required=True)
    boot.add_argument("--artifacts", required=True, help="directory for the joblib artifacts")
    boot.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] not in ("serve", "bootstrap", "-h", "--help"):
        args_list.insert(0, "serve")
    args = _parser().parse_args(args_list)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "bootstrap":
        from model_server.demo import bootstrap

        result = bootstrap(args.registry_db, args.model, args.artifacts, seed=args.seed)
        print(
            f"registered {result.model}: "
            + ", ".join(
                f"{v} (validation AUC {result.validation_auc[v]:.3f}) -> {p}"
                for v, p in result.versions.items()
            )
        )
        return 0
    if not math.isfinite(args.poll_interval) or args.poll_interval <= 0:
        print("--poll-interval must be a positive number of seconds", file=sys.stderr)
        return 2
    if not 1 <= args.psi_min_samples <= args.psi_window:
        print("need 1 <= --psi-min-samples <= --psi-window", file=sys.stderr)
        return 2
    config = ServerConfig(
        args.registry_db,
        args.model,
        args.host,
        args.port,
        _read_token(args.admin_token_file),
        args.poll_interval,
        args.threads,
        args.psi_window,
        args.psi_min_samples,
        args.registry_token_file,
    )
    from waitress import serve

    from model_registry import RegistryError, UnknownModelError

    try:
        server = ModelServer(config)
        server.start()
    except UnknownModelError:
        print(
            f"model-server: error: model {config.model!r} is not in the registry {config.registry_db}; "
            f"create it with 'model-server bootstrap --registry-"
            f"{'url' if '://' in config.registry_db else 'db'} {config.registry_db} --model {config.model} "
            "--artifacts DIR' or register a version (model-registry register)",
            file=sys.stderr,
        )
        return 2
    except RegistryError as exc:
        print(f"model-server: error: {exc.message}", file=sys.stderr)
        return 1
    log.info(
        "model server for %s on http://%s:%d (admin API %s)",
        config.model,
        config.host,
        config.port,
        "enabled" if config.admin_token else "disabled",
    )
    try:
        serve(create_app(server), host=config.host, port=config.port, threads=config.threads)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
