"""Alembic's entry: run the revisions on the connection ``upgrade`` hands over (the studio
never lets Alembic open its own), or, from the ``alembic`` command line, on
``ENFOADS_DATABASE_URL`` (else the data dir's SQLite)."""

from __future__ import annotations

from alembic import context

from enfoads.core.db import Base

connection = context.config.attributes.get("connection")
if connection is None:  # the alembic command line
    from enfoads.core.db import create_engine_only
    from enfoads.core.settings import load_settings

    engine = create_engine_only(load_settings().db_url)
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata)
        context.run_migrations()
else:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # ALTER by table copy there
    )
    context.run_migrations()
