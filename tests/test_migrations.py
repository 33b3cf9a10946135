"""The schema as migrations (issue #36, first part): the revisions give exactly the models'
schema on SQLite and PostgreSQL, a database an earlier release made is adopted and upgraded
with its rows kept, and two processes starting on one new database make it once."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from enfoads.core import db, migrations
from enfoads.core.settings import load_settings
from enfoads.core.studio import Studio


def schema_diff(engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), db.Base.metadata)


def test_the_revisions_make_exactly_the_models_schema(database_url):
    engine = db.create_engine_only(database_url)
    with engine.begin() as conn:
        command.upgrade(migrations.config(conn), "head")
    assert schema_diff(engine) == []
    engine.dispose()
    fresh = db.create_engine(database_url)  # at head: nothing to do
    with fresh.connect() as conn:
        assert migrations.current(conn) == migrations.head() == "0002"
    fresh.dispose()


def earlier_release(url: str, first: bool) -> None:
    """A database as an earlier release left it, with a row in each table: the first
    release's tables (``first``), or the last release's (its ``create_all``), and no
    ``alembic_version`` either way."""
    engine = db.create_engine_only(url)
    if first:
        with engine.begin() as conn:
            command.upgrade(migrations.config(conn), migrations.FIRST_RELEASE)
            conn.execute(text("DROP TABLE alembic_version"))
    else:
        db.Base.metadata.create_all(engine)
    now = datetime(2026, 11, 30, 12, 0)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO assets (id, kind, name, sha256, ext, mime, size_bytes, prompt, "
                "parents, model_ids, meta, created_at) VALUES ('img_old', 'image', 'Café', "
                "'ab', 'png', 'image/png', 3, 'café', '[]', '[]', '{}', :now)"
            ),
            {"now": now},
        )
        later = "" if first else ", cancel_requested"  # the last release always wrote it
        conn.execute(
            text(
                "INSERT INTO jobs (id, kind, state, progress, stage, params, result_asset_ids, "
                f"result, error, error_code, created_at{later}) VALUES ('job_old', "
                "'generate_image', 'completed', 100, '', '{}', '[\"img_old\"]', '{}', '', '', "
                f":now{', FALSE' if later else ''})"
            ),
            {"now": now},
        )
    engine.dispose()


@pytest.mark.parametrize("first", [True, False], ids=["first-release", "last-release"])
def test_a_database_an_earlier_release_made_is_adopted_and_upgraded(database_url, tmp_path, first):
    earlier_release(database_url, first)
    settings = load_settings(data_dir=tmp_path / "data", device="cpu", database_url=database_url)
    with Studio(settings) as studio:
        assert studio.get_asset("img_old").name == "Café"  # the rows are kept
        job = studio.get_job("job_old")
        assert job.state.value == "completed" and tuple(job.result_asset_ids) == ("img_old",)
        assert job.owner is None and job.stage_i18n is None  # the columns 0002 added
        assert studio.list_assets(text="cafe").total == 1  # the search column, filled in
    engine = db.create_engine_only(database_url)
    with engine.connect() as conn:
        assert migrations.current(conn) == migrations.head()
    names = {i["name"] for i in inspect(engine).get_indexes("jobs")}
    assert "ix_jobs_owner" in names and "engine" in inspect(engine).get_table_names()
    engine.dispose()


def test_two_processes_starting_on_a_new_database_make_it_once(database_url):
    """The engine and a worker (or two Colab sessions on one Drive folder) start at once."""
    results, errors = [], []

    def start() -> None:
        try:
            engine = db.create_engine(database_url)
            with engine.connect() as conn:
                results.append(migrations.current(conn))
            engine.dispose()
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and results == [migrations.head()] * 4
