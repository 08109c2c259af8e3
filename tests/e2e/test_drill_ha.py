"""``receiver drill --ha``: the production shape natively (a clustered Alertmanager pair, each peer posting
to its own receiver replica, both replicas on one real PostgreSQL 15) contains a bad release exactly once."""

from __future__ import annotations

import pytest

from receiver.drill.run import DrillRun
from receiver.drill.scenarios import get_scenario
from receiver.drill.stack import StackOptions
from receiver.store import open_database_store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_ha_drill_contains_a_bad_release_once() -> None:
    run = DrillRun([get_scenario("bad-release")], options=StackOptions(ha=True))
    try:
        report = run.execute()
        [result] = report.results
        assert report.problems == [] and report.dropped_settings == []
        assert result.contained and result.verified, result.reason
        urls = run.stack.urls()
        assert {"alertmanager 2", "receiver 2", "postgresql"} <= set(urls)
        rollbacks = [e for e in result.registry_history if e["action"] == "rollback"]
        assert len(rollbacks) == 1, rollbacks
        assert run.stack.database_url is not None
        store = open_database_store(run.stack.database_url, migrate=False)
        try:
            with store.db.read() as tx:
                # one incident per (runbook, key) however many peers and replicas saw the alerts; the
                # error-budget burn that outlives the release watch opens serving-errors after the
                # rollback (a rules matter, noted in issue 12), so count the release's runbook
                incidents = tx.execute(
                    "SELECT COUNT(*) FROM incidents WHERE runbook_id = 'bad-release'"
                ).fetchone()[0]
                rollback_rows = tx.execute(
                    "SELECT COUNT(*) FROM action_ledger WHERE kind = 'rollback' AND state = 'succeeded'"
                ).fetchone()[0]
        finally:
            store.close()
        assert incidents == 1 and rollback_rows == 1
        assert result.messages, "the status updates reached the chat sink"
    finally:
        run.stop()
