"""The tests' PostgreSQL is the drill's (:mod:`receiver.drill.postgres`): one launcher, used both ways."""

from receiver.drill.postgres import RunningPostgres, find_pg_bin, start_postgres

__all__ = ["RunningPostgres", "find_pg_bin", "start_postgres"]
