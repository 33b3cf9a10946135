"""The database: SQLAlchemy 2 tables for assets and jobs, SQLite (WAL) by default.

The URL comes from settings, so a shared deployment points every worker at PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    event,
)
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    mapped_column,
    relationship,
    sessionmaker,
    validates,
)


class Base(DeclarativeBase):
    pass


class AssetRow(Base):
    __tablename__ = "assets"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    ext: Mapped[str] = mapped_column(String(10))
    mime: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    thumb_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    prompt: Mapped[str] = mapped_column(Text, default="")
    seed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    parents: Mapped[list[str]] = mapped_column(JSON, default=list)
    model_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    # Name, prompt and tags folded (no accents, no case) for the vault's search: "cafe" finds
    # "Café". NULL on rows written before the column existed (filled in at start-up).
    search_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The asset this one is a file of (a video's voice-over WAV and its SRT/VTT subtitles):
    # the vault shows them on the video's card, not as cards of their own.
    part_of: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    tags: Mapped[list[TagRow]] = relationship(
        back_populates="asset", cascade="all, delete-orphan", lazy="selectin"
    )

    @validates("name")
    def _name_fits(self, _key: str, value: str | None) -> str | None:
        """Every name the store writes (an upload, a re-index) inside VARCHAR(255), which
        PostgreSQL enforces and SQLite does not."""
        return value[:255] if value else value


class TagRow(Base):
    __tablename__ = "asset_tags"
    __table_args__ = (Index("ix_asset_tags_tag", "tag"),)

    asset_id: Mapped[str] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    asset: Mapped[AssetRow] = relationship(back_populates="tags")


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str] = mapped_column(String(255), default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result_asset_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    error_code: Mapped[str] = mapped_column(String(64), default="")
    retry_of: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # The lease: which process runs the job, and when it last said it still does.
    owner: Mapped[str | None] = mapped_column(String(120), nullable=True, index=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Set by a cancel from any process; the runner checks it between steps.
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # The stage's and the error's catalogue key and parameters, to show them in whatever
    # language the studio speaks when they are read ({"key": …, "params": {…}}).
    stage_i18n: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error_i18n: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class EngineRow(Base):
    """The one engine of this data dir: who it is, where its API listens, and its lease."""

    __tablename__ = "engine"

    key: Mapped[str] = mapped_column(String(20), primary_key=True)  # always "engine"
    owner: Mapped[str] = mapped_column(String(120))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(String(255), default="")
    token: Mapped[str] = mapped_column(String(255), default="")
    started_at: Mapped[datetime] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime)


def create_engine_only(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a shared connection pool."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Worker threads and the server share one engine.
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True  # a server restarted under a long-lived engine
    engine = sa_create_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine


def create_engine(url: str) -> Engine:
    """An engine whose database is at the newest schema (``migrations.upgrade``: created,
    upgraded, or an earlier release's adopted)."""
    from enfoads.core import migrations

    engine = create_engine_only(url)
    migrations.upgrade(engine, Base.metadata)
    return engine


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
