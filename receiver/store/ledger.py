"""The action ledger: exactly-once claims for action steps, one row per (incident, phase, step, kind).

Whoever inserts a step's row owns the step; everyone else (a repeat, an Alertmanager retry, an HA peer's
duplicate, another thread, process or replica) sees the existing row and does nothing. The claim takes a
lock on the step's key and, for containments, on the model, so the cooldown and flap guard are decided
atomically: two incidents on one model cannot both slip past them, on one replica or on several.

``claimed``/``running`` rows carry a lease that their owner renews while it works (a heartbeat); a row past
its lease belongs to an owner that died, and :meth:`SqlLedger.take_over` hands it to exactly one survivor.
state: claimed -> running -> succeeded | failed | refused | skipped | dry_run | interrupted | unknown
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from receiver.errors import StoreError
from receiver.store.base import FINAL_STATES, Claim, GuardPolicy, LedgerKey, LedgerRow
from receiver.store.sql import Database, Tx

__all__ = ["SqlLedger"]

#: States that count as "this incident acted on the model" for cooldown and the flap guard.
_ACTED_STATES = ("claimed", "running", "succeeded", "interrupted", "unknown")
_COLUMNS = (
    "id, incident_id, phase, step_id, kind, model, runbook_id, state, reason, automatic, containment, "
    "params, snapshot, result, error, attempts, owner, lease_until, created_at, updated_at, finished_at"
)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _row(r: Any) -> LedgerRow:
    return LedgerRow(
        int(r["id"]),
        LedgerKey(r["incident_id"], r["phase"], r["step_id"], r["kind"]),
        r["model"],
        r["runbook_id"],
        r["state"],
        r["reason"],
        bool(r["automatic"]),
        bool(r["containment"]),
        _loads(r["params"]) or {},
        _loads(r["snapshot"]),
        _loads(r["result"]),
        r["error"],
        int(r["attempts"]),
        r["owner"],
        r["lease_until"],
        r["created_at"],
        r["updated_at"],
        r["finished_at"],
    )


def _supersedable(row: LedgerRow, *, dry_run: bool, automatic: bool) -> bool:
    if row.state == "dry_run":
        return not dry_run
    guarded = row.state == "skipped" and (row.reason or "").startswith(("cooldown", "flap_guard"))
    return guarded and not automatic and not dry_run


class SqlLedger:
    """Claims and state transitions of action steps. Every method is one short transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reads ----------------------------------------------------------------------------------------
    def get(self, key: LedgerKey) -> LedgerRow | None:
        with self.db.read() as tx:
            return self._get(tx, key)

    def rows(self, incident_id: str, phase: str | None = None) -> list[LedgerRow]:
        query = f"SELECT {_COLUMNS} FROM action_ledger WHERE incident_id = ?"
        args: list[Any] = [incident_id]
        if phase is not None:
            query += " AND phase = ?"
            args.append(phase)
        with self.db.read() as tx:
            return [_row(r) for r in tx.execute(query + " ORDER BY id", args).fetchall()]

    def expired(self, now: float) -> list[LedgerRow]:
        """Steps left ``claimed``/``running`` past their lease: their owner died (or hung) mid-step."""
        with self.db.read() as tx:
            found = tx.execute(
                f"SELECT {_COLUMNS} FROM action_ledger WHERE state IN ('claimed', 'running') "
                "AND lease_until IS NOT NULL AND lease_until < ? ORDER BY id",
                (now,),
            ).fetchall()
        return [_row(r) for r in found]

    # -- claim ----------------------------------------------------------------------------------------
    def claim(
        self,
        key: LedgerKey,
        *,
        model: str,
        runbook_id: str,
        params: Mapping[str, Any],
        owner: str,
        now: float,
        lease_until: float,
        containment: bool,
        automatic: bool,
        dry_run: bool,
        guard: GuardPolicy | None,
    ) -> Claim:
        """Insert the step's row if nobody has; decide dry-run, cooldown and flap guard atomically.

        A ``dry_run`` row is superseded by a real run once dry-run is switched off, so rehearsing a runbook
        never blocks it from acting later; a step held back by the cooldown or flap guard is superseded when
        a human runs it (``automatic=False``), which is what the escalation asks them to decide.
        """
        guarded = guard is not None and containment and automatic and key.phase == "contain" and bool(model)
        with self.db.transaction() as tx:
            tx.lock(f"ledger:{key.incident_id}:{key.phase}:{key.step_id}:{key.kind}")
            if guarded:
                tx.lock(f"ledger-model:{model}")
            existing = self._get(tx, key)
            if existing is not None and not _supersedable(existing, dry_run=dry_run, automatic=automatic):
                return Claim("duplicate", existing)
            state, reason = "claimed", None
            if dry_run:
                state = "dry_run"
            elif guarded and guard is not None:
                reason = self._guard(tx, key, model, now, guard)
                if reason is not None:
                    state = "skipped"
            final = state != "claimed"
            values = (
                model,
                runbook_id,
                state,
                reason,
                int(automatic),
                int(containment),
                _dumps(dict(params)),
                owner,
                None if final else lease_until,
                now,
                now if final else None,
            )
            if existing is None:
                tx.execute(
                    "INSERT INTO action_ledger (model, runbook_id, state, reason, automatic, containment, "
                    "params, owner, lease_until, updated_at, finished_at, incident_id, phase, step_id, kind, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*values, key.incident_id, key.phase, key.step_id, key.kind, now),
                )
            else:
                tx.execute(
                    "UPDATE action_ledger SET model = ?, runbook_id = ?, state = ?, reason = ?, "
                    "automatic = ?, containment = ?, params = ?, owner = ?, lease_until = ?, updated_at = ?, "
                    "finished_at = ?, created_at = ? WHERE id = ?",
                    (*values, now, existing.id),
                )
            row = self._get(tx, key)
        assert row is not None
        status: Literal["won", "dry_run", "skipped"] = (
            "won" if state == "claimed" else "dry_run" if state == "dry_run" else "skipped"
        )
        return Claim(status, row)

    def _guard(self, tx: Tx, key: LedgerKey, model: str, now: float, guard: GuardPolicy) -> str | None:
        acted = ", ".join("?" for _ in _ACTED_STATES)
        base = (
            f"FROM action_ledger WHERE model = ? AND containment = 1 AND automatic = 1 "
            f"AND phase = 'contain' AND state IN ({acted})"
        )
        own = tx.execute(
            f"SELECT 1 {base} AND incident_id = ? LIMIT 1", (model, *_ACTED_STATES, key.incident_id)
        ).fetchone()
        if own is not None:  # this incident was already admitted; its further steps are one containment
            return None
        window_start = now - guard.flap_window_seconds
        others = tx.execute(
            f"SELECT incident_id, MAX(created_at) {base} AND incident_id != ? AND created_at >= ? "
            "GROUP BY incident_id ORDER BY MAX(created_at) DESC",
            (model, *_ACTED_STATES, key.incident_id, min(window_start, now - guard.cooldown_seconds)),
        ).fetchall()
        in_window = [r for r in others if r[1] >= window_start]
        if guard.flap_max > 0 and len(in_window) >= guard.flap_max:
            return (
                f"flap_guard: {len(in_window)} automatic containments of model {model!r} in the last "
                f"{guard.flap_window_seconds / 60:g} min (limit {guard.flap_max}); humans must decide"
            )
        recent = [r for r in others if r[1] >= now - guard.cooldown_seconds]
        if recent:
            incident, at = recent[0]
            return (
                f"cooldown: incident {incident} contained model {model!r} {now - at:.0f}s ago "
                f"(cooldown {guard.cooldown_seconds / 60:g} min); not acting automatically"
            )
        return None

    # -- transitions ----------------------------------------------------------------------------------
    def start(self, row_id: int, *, snapshot: Mapping[str, Any], now: float, lease_until: float) -> None:
        self._update(
            row_id,
            "state = 'running', snapshot = ?, updated_at = ?, lease_until = ?",
            (_dumps(dict(snapshot)), now, lease_until),
            expect=("claimed", "running"),
        )

    def attempt(self, row_id: int, *, attempts: int, now: float, lease_until: float) -> None:
        self._update(
            row_id,
            "attempts = ?, updated_at = ?, lease_until = ?",
            (attempts, now, lease_until),
            expect=("running",),
        )

    def renew(self, row_id: int, *, owner: str, lease_until: float) -> bool:
        """Extend the lease of a row this owner still holds (False: it was taken over or finished)."""
        with self.db.transaction(durable=False) as tx:
            cur = tx.execute(
                "UPDATE action_ledger SET lease_until = ? WHERE id = ? AND owner = ? "
                "AND state IN ('claimed', 'running')",
                (lease_until, row_id, owner),
            )
            return cur.rowcount == 1

    def finish(
        self,
        row_id: int,
        state: str,
        *,
        now: float,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
        reason: str | None = None,
        attempts: int | None = None,
    ) -> None:
        if state not in FINAL_STATES:
            raise ValueError(f"not a final ledger state: {state!r}")
        sets = (
            "state = ?, result = ?, error = ?, reason = ?, updated_at = ?, finished_at = ?, "
            "lease_until = NULL"
        )
        args: list[Any] = [state, None if result is None else _dumps(dict(result)), error, reason, now, now]
        if attempts is not None:
            sets += ", attempts = ?"
            args.append(attempts)
        self._update(row_id, sets, tuple(args), expect=("claimed", "running"))

    def take_over(self, row: LedgerRow, *, owner: str, now: float, lease_until: float) -> bool:
        """Adopt an expired row; exactly one of several resuming processes gets it."""
        with self.db.transaction() as tx:
            cur = tx.execute(
                "UPDATE action_ledger SET owner = ?, lease_until = ?, updated_at = ? "
                "WHERE id = ? AND state = ? AND lease_until IS NOT DISTINCT FROM ? AND owner = ? "
                "AND lease_until < ?",
                (owner, lease_until, now, row.id, row.state, row.lease_until, row.owner, now),
            )
            return cur.rowcount == 1

    # -- helpers --------------------------------------------------------------------------------------
    def _update(self, row_id: int, sets: str, args: tuple[Any, ...], *, expect: tuple[str, ...]) -> None:
        marks = ", ".join("?" for _ in expect)
        with self.db.transaction() as tx:
            cur = tx.execute(
                f"UPDATE action_ledger SET {sets} WHERE id = ? AND state IN ({marks})",
                (*args, row_id, *expect),
            )
            if cur.rowcount != 1:
                found = tx.execute("SELECT state FROM action_ledger WHERE id = ?", (row_id,)).fetchone()
                raise StoreError(
                    f"ledger row {row_id} is {found[0] if found else 'missing'}, "
                    f"expected one of {', '.join(expect)}"
                )

    @staticmethod
    def _get(tx: Tx, key: LedgerKey) -> LedgerRow | None:
        found = tx.execute(
            f"SELECT {_COLUMNS} FROM action_ledger WHERE incident_id = ? AND phase = ? AND step_id = ? "
            "AND kind = ?",
            (key.incident_id, key.phase, key.step_id, key.kind),
        ).fetchone()
        return None if found is None else _row(found)
