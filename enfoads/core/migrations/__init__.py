"""The database's schema as migrations (Alembic), so a database that outlives versions (SQLite
on Drive, PostgreSQL in a cluster) is upgraded at start-up, never altered by hand.

``upgrade(engine)`` brings any database to the newest revision:

- an empty one: the tables as the models declare them (``Base.metadata``), stamped with the
  newest revision (one ``CREATE`` per table: every test and every new studio starts so);
- one at an older revision: the revisions after it, in order;
- one an earlier release made before migrations existed (its tables, no ``alembic_version``):
  any table it never made created, then stamped as the first release and upgraded (revision
  0002 adds only what it lacks).

Two processes that start at once (the engine and a worker, two Colab sessions on one Drive
folder) take turns: PostgreSQL with an advisory lock, SQLite with its write lock.

A new schema change is a new file in ``versions/`` (``alembic revision`` with
``enfoads/core/migrations/alembic.ini``, or by hand: see CONTRIBUTING.md), and
``tests/test_migrations.py`` checks that the revisions give exactly the models' schema.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)
# Alembic says "Context impl SQLiteImpl." at INFO on every open: a notebook cell that shows
# INFO would print it at each start. What changed is logged here, once, instead.
logging.getLogger("alembic").setLevel(logging.WARNING)

HERE = Path(__file__).resolve().parent
FIRST_RELEASE = "0001"
LOCK_KEY = 7_342_101  # PostgreSQL advisory lock of the studio's schema changes


@cache
def script() -> Any:
    """The revisions (read once a process)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(HERE))


def head() -> str:
    return script().get_current_head()


def config(connection: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = connection
    return cfg


def current(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, metadata: Any) -> str:
    """The database at the newest revision (see the module's doc); the revision it was at."""
    with engine.connect() as probe:
        was = current(probe)
    if was == head():
        return was  # the common case: one SELECT
    with engine.begin() as conn:
        _lock(conn)
        was = current(conn)  # another process may have done it meanwhile
        if was == head():
            return was
        tables = set(inspect(conn).get_table_names()) - {"alembic_version"}
        from alembic import command

        if not tables:
            metadata.create_all(conn)
            command.stamp(config(conn), "head")
            log.info("database created at revision %s", head())
            return "empty"
        if was is None:  # an earlier release's tables, before migrations
            metadata.create_all(conn)  # a table it never made (checkfirst: the others stay)
            command.stamp(config(conn), FIRST_RELEASE)
            log.info("database of an earlier release adopted as revision %s", FIRST_RELEASE)
            was = FIRST_RELEASE
        command.upgrade(config(conn), "head")
        log.info("database upgraded from revision %s to %s", was, head())
    return was


def _lock(conn: Connection) -> None:
    """Hold the database's schema lock until the transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
