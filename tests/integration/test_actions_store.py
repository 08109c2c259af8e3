"""The ledger on the receiver's real store: created by the store's migrations, and the store's
transactions (BEGIN IMMEDIATE on per-thread connections) giving exactly-once under 8 threads."""

from __future__ import annotations

import threading
from pathlib import Path

from receiver.actions.base import ActionSettings
from receiver.actions.executor import ActionExecutor, StepSpec
from receiver.actions.registry import default_registry
from receiver.store import open_store
from tests.support.action_fixtures import Sleeper, make_context


def test_ledger_on_the_store_runs_a_step_once_across_eight_threads(tmp_path: Path, recording_server):
    store = open_store(tmp_path / "data")
    try:
        names = {
            r[0] for r in store.connection().execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        assert "action_ledger" in names  # created by the store's migrations
        sink = recording_server()
        settings = ActionSettings(http_allow_list=(sink.url,))
        ledger = store.ledger
        executor = ActionExecutor(ledger, default_registry(), settings, sleep=Sleeper())
        step = StepSpec.from_mapping({"action": "http", "url": sink.url + "/flag", "body": {"on": True}}, 0)
        barrier = threading.Barrier(8)
        outcomes = []

        def deliver() -> None:
            barrier.wait(timeout=5)
            outcomes.append(executor.run_step(step, make_context(settings, incident_id="17")))

        threads = [threading.Thread(target=deliver) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert len(outcomes) == 8 and sum(not o.duplicate for o in outcomes) == 1
        assert len(sink.requests) == 1
        [row] = ledger.rows("17")
        assert row.state == "succeeded" and row.attempts == 1
    finally:
        store.close()
