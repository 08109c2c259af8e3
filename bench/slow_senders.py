"""Slow-sender bench: webhook latency of the real ``receiver serve`` process with and without 200
unauthenticated connections that trickle one header byte per second (issue 14).

One phase without the attack (the baseline, same run, same machine), then one with ``--connections``
slow senders held for ``--seconds`` (a dropped one is reopened at once, as an attacker would). During
each phase a client POSTs a small valid notification every 0.1 s with a 3 s timeout; a timeout counts as
3 s. Prints p50/p99 and the ratio of the two p99s. ``--waitress-defaults`` runs the attack against the
old front (connection_limit 100, no request deadline) to show the defect. Loopback only, bounded.

    .venv/bin/python bench/slow_senders.py [--connections 200] [--seconds 60] [--waitress-defaults]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.payloads import alert, notification  # noqa: E402
from tests.support.serve_process import ServeProcess, hold_slow_senders, start_serve  # noqa: E402

TIMEOUT = 3.0


def _measure(serve: ServeProcess, seconds: float, attack: threading.Thread | None) -> list[float]:
    samples: list[float] = []
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end and (attack is None or attack.is_alive()):
        started = time.monotonic()
        try:
            ok = serve.post(notification(alert(feature=f"f{i}")), timeout=TIMEOUT).status_code == 200
        except Exception:
            ok = False
        samples.append(time.monotonic() - started if ok else TIMEOUT)
        i += 1
        time.sleep(0.1)
    return samples


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    parser.add_argument(
        "--waitress-defaults",
        action="store_true",
        help="connection_limit 100 and no request deadline (the front before issue 14)",
    )
    args = parser.parse_args()
    settings: dict[str, Any] = (
        {"connection_limit": 100, "request_deadline": 3600} if args.waitress_defaults else {}
    )
    with tempfile.TemporaryDirectory() as tmp:
        serve = start_serve(Path(tmp), **settings)
        try:
            base = _measure(serve, args.baseline_seconds, None)
            attack = threading.Thread(
                target=hold_slow_senders, args=(serve.port, args.connections, args.seconds, 1.0), daemon=True
            )
            attack.start()
            time.sleep(2)
            attacked = _measure(serve, args.seconds, attack)
            attack.join(args.seconds + 30)
        finally:
            serve.stop()
    front = "waitress defaults" if args.waitress_defaults else "receiver front"
    print(f"front: {front}; {args.connections} slow connections for {args.seconds:.0f} s")
    for name, samples in (("no attack", base), ("attack", attacked)):
        failed = sum(1 for s in samples if s >= TIMEOUT)
        print(
            f"{name:>10}: n={len(samples)} p50={statistics.median(samples) * 1000:.1f} ms "
            f"p99={_p(samples, 0.99) * 1000:.1f} ms timeouts={failed}"
        )
    print(f"p99 ratio attack/no attack: {_p(attacked, 0.99) / _p(base, 0.99):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
