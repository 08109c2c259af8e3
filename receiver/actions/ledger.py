"""The action ledger: exactly-once claims for action steps, kept in SQLite (migration 0003_ledger.sql).

A step is identified by ``(incident_id, phase, step_id, kind)``. Whoever inserts that row inside a
``BEGIN IMMEDIATE`` transaction owns the step; everyone else (a repeat, an Alertmanager retry, an HA peer's
duplicate, another thread or process) sees the existing row and does nothing. The cooldown and flap guard are
decided inside the same transaction, so two incidents on one model cannot both slip past them.

The ledger writes through anything with a ``transaction()`` context manager yielding a ``sqlite3.Connection``
already in ``BEGIN IMMEDIATE`` (the receiver store); :class:`SQLiteFile` is a minimal one for standalone use.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from receiver.errors import StoreError
from receiver.store.sqlscript import split_sql

__all__ = [
    "FINAL_STATES",
    "Claim",
    "GuardPolicy",
    "Ledger",
    "LedgerKey",
    "LedgerRow",
    "SQLiteFile",
    "Transactional",
]

FINAL_STATES = frozenset({"succeeded", "failed", "refused", "skipped", "dry_run", "interrupted"})
#: States that count as "this incident acted on the model" for cooldown and the flap guard.
_ACTED_STATES = ("claimed", "running", "succeeded", "interrupted")


class Transactional(Protocol):
    def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...


class SQLiteFile:
    """One short-lived connection per transaction on a SQLite file, in WAL mode with BEGIN IMMEDIATE."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 30.0) -> None:
        self.path = str(path)
        self.busy_timeout = busy_timeout

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open ledger database {self.path}: {exc}") from exc
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()


@dataclass(frozen=True)
class LedgerKey:
    incident_id: str
    phase: str
    step_id: str
    kind: str


@dataclass(frozen=True)
class LedgerRow:
    id: int
    key: LedgerKey
    model: str
    runbook_id: str
    state: str
    reason: str | None
    automatic: bool
    containment: bool
    params: dict[str, Any]
    snapshot: dict[str, Any] | None
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    owner: str
    lease_until: float | None
    created_at: float
    updated_at: float
    finished_at: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "incident_id": self.key.incident_id,
            "phase": self.key.phase,
            "step_id": self.key.step_id,
            "kind": self.key.kind,
            "model": self.model,
            "runbook_id": self.runbook_id,
            "state": self.state,
            "reason": self.reason,
            "automatic": self.automatic,
            "params": self.params,
            "result": self.result,
            "error": self.error,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
        }


@dataclass(frozen=True)
class GuardPolicy:
    """Cooldown and flap guard for automatic containments on one model (``flap_max`` 0 disables it)."""

    cooldown_seconds: float = 600.0
    flap_max: int = 3
    flap_window_seconds: float = 3600.0


@dataclass(frozen=True)
class Claim:
    """``status``: ``won`` (run it), ``duplicate`` (someone already has it), ``dry_run``, or ``skipped``."""

    status: Literal["won", "duplicate", "dry_run", "skipped"]
    row: LedgerRow


_COLUMNS = (
    "id, incident_id, phase, step_id, kind, model, runbook_id, state, reason, automatic, containment, "
    "params, snapshot, result, error, attempts, owner, lease_until, created_at, updated_at, finished_at"
)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _row(values: tuple[Any, ...]) -> LedgerRow:
    (
        id_,
        incident_id,
        phase,
        step_id,
        kind,
        model,
        runbook_id,
        state,
        reason,
        automatic,
        containment,
        params,
        snapshot,
        result,
        error,
        attempts,
        owner,
        lease_until,
        created_at,
        updated_at,
        finished_at,
    ) = values
    return LedgerRow(
        int(id_),
        LedgerKey(incident_id, phase, step_id, kind),
        model,
        runbook_id,
        state,
        reason,
        bool(automatic),
        bool(containment),
        _loads(params) or {},
        _loads(snapshot),
        _loads(result),
        error,
        int(attempts),
        owner,
        lease_until,
        created_at,
        updated_at,
        finished_at,
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class Ledger:
    """Claims and state transitions of action steps. Every method is one short transaction."""

    def __init__(self, db: Transactional) -> None:
        self.db = db

    # -- schema ---------------------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Apply 0003_ledger.sql (idempotent); the store's migration runner may have done so already."""
        sql = (
            Path(__file__).resolve().parent.parent / "store" / "migrations" / "0003_ledger.sql"
        ).read_text()
        with self.db.transaction() as conn:
            for statement in split_sql(sql):
                conn.execute(statement)

    # -- reads ----------------------------------------------------------------------------------------
    def get(self, key: LedgerKey) -> LedgerRow | None:
        with self.db.transaction() as conn:
            return self._get(conn, key)

    def rows(self, incident_id: str, phase: str | None = None) -> list[LedgerRow]:
        query = f"SELECT {_COLUMNS} FROM action_ledger WHERE incident_id = ?"
        args: list[Any] = [incident_id]
        if phase is not None:
            query += " AND phase = ?"
            args.append(phase)
        with self.db.transaction() as conn:
            return [_row(r) for r in conn.execute(query + " ORDER BY id", args).fetchall()]

    def expired(self, now: float) -> list[LedgerRow]:
        """Steps left ``claimed``/``running`` past their lease: their owner died (or hung) mid-step."""
        with self.db.transaction() as conn:
            found = conn.execute(
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
        with self.db.transaction() as conn:
            existing = self._get(conn, key)
            if existing is not None and not _supersedable(existing, dry_run=dry_run, automatic=automatic):
                return Claim("duplicate", existing)
            state, reason = "claimed", None
            if dry_run:
                state = "dry_run"
            elif guard is not None and containment and automatic and key.phase == "contain" and model:
                reason = self._guard(conn, key, model, now, guard)
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
                conn.execute(
                    "INSERT INTO action_ledger (model, runbook_id, state, reason, automatic, containment, "
                    "params, owner, lease_until, updated_at, finished_at, incident_id, phase, step_id, kind, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*values, key.incident_id, key.phase, key.step_id, key.kind, now),
                )
            else:
                conn.execute(
                    "UPDATE action_ledger SET model = ?, runbook_id = ?, state = ?, reason = ?, "
                    "automatic = ?, containment = ?, params = ?, owner = ?, lease_until = ?, updated_at = ?, "
                    "finished_at = ?, created_at = ? WHERE id = ?",
                    (*values, now, existing.id),
                )
            row = self._get(conn, key)
        assert row is not None
        status: Literal["won", "dry_run", "skipped"] = (
            "won" if state == "claimed" else "dry_run" if state == "dry_run" else "skipped"
        )
        return Claim(status, row)

    def _guard(
        self, conn: sqlite3.Connection, key: LedgerKey, model: str, now: float, guard: GuardPolicy
    ) -> str | None:
        acted = ", ".join("?" for _ in _ACTED_STATES)
        base = (
            f"FROM action_ledger WHERE model = ? AND containment = 1 AND automatic = 1 "
            f"AND phase = 'contain' AND state IN ({acted})"
        )
        own = conn.execute(
            f"SELECT 1 {base} AND incident_id = ? LIMIT 1", (model, *_ACTED_STATES, key.incident_id)
        ).fetchone()
        if own is not None:  # this incident was already admitted; its further steps are one containment
            return None
        window_start = now - guard.flap_window_seconds
        others = conn.execute(
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
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE action_ledger SET owner = ?, lease_until = ?, updated_at = ? "
                "WHERE id = ? AND state = ? AND lease_until IS ? AND owner = ?",
                (owner, lease_until, now, row.id, row.state, row.lease_until, row.owner),
            )
            return cur.rowcount == 1

    # -- helpers --------------------------------------------------------------------------------------
    def _update(self, row_id: int, sets: str, args: tuple[Any, ...], *, expect: tuple[str, ...]) -> None:
        marks = ", ".join("?" for _ in expect)
        with self.db.transaction() as conn:
            cur = conn.execute(
                f"UPDATE action_ledger SET {sets} WHERE id = ? AND state IN ({marks})",
                (*args, row_id, *expect),
            )
            if cur.rowcount != 1:
                found = conn.execute("SELECT state FROM action_ledger WHERE id = ?", (row_id,)).fetchone()
                raise StoreError(
                    f"ledger row {row_id} is {found[0] if found else 'missing'}, "
                    f"expected one of {', '.join(expect)}"
                )

    @staticmethod
    def _get(conn: sqlite3.Connection, key: LedgerKey) -> LedgerRow | None:
        found = conn.execute(
            f"SELECT {_COLUMNS} FROM action_ledger WHERE incident_id = ? AND phase = ? AND step_id = ? "
            "AND kind = ?",
            (key.incident_id, key.phase, key.step_id, key.kind),
        ).fetchone()
        return None if found is None else _row(found)


def _supersedable(row: LedgerRow, *, dry_run: bool, automatic: bool) -> bool:
    if row.state == "dry_run":
        return not dry_run
    guarded = row.state == "skipped" and (row.reason or "").startswith(("cooldown", "flap_guard"))
    return guarded and not automatic and not dry_run
