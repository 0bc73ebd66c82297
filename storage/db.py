"""Engine and session factory for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from storage.survey_versions import SurveyVersions
from storage.tallies import keep_tallies

T = TypeVar("T")
DEFAULT_WORKERS = 8


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url[len("postgres://") :]
    return url


def _in_memory(url: str) -> bool:
    return url.startswith("sqlite") and (
        ":memory:" in url or "mode=memory" in url or url.rstrip("/") in ("sqlite:", "sqlite:/")
    )


def make_engine(url: str, *, workers: int = DEFAULT_WORKERS, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and enforced foreign keys.

    The pool keeps `workers` connections for the worker threads that run updates' transactions,
    and allows as many again for jobs, health checks and the outbox.
    """
    url = normalise_url(url)
    # SQL errors must not carry answer texts or ids into logs: hide bound parameters.
    kwargs.setdefault("hide_parameters", True)
    if not _in_memory(url) and "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", workers)
        kwargs.setdefault("max_overflow", workers)
    if url.startswith("sqlite"):
        # Concurrent writers wait (up to 30 s) for the write lock instead of failing.
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, decide when a transaction begins, so that
            # BEGIN IMMEDIATE below really locks (pysqlite's legacy mode defers BEGIN).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if not _in_memory(url):
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Writers take the lock at BEGIN: no "database is locked" upgrade deadlocks.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


class Database:
    """An engine plus its session factory: what the rest of buurtstem passes around.

    `run(work)` runs `work(session)` in one transaction on one of `workers` threads, so the
    event loop that talks to Telegram never waits for the database.
    """

    def __init__(self, url: str, *, workers: int = DEFAULT_WORKERS, **engine_kwargs: Any) -> None:
        self.url = normalise_url(url)
        # One thread for an in-memory SQLite database: each connection would see its own.
        self.workers = 1 if _in_memory(self.url) else workers
        self.engine = make_engine(self.url, workers=self.workers, **engine_kwargs)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        # Tallies follow every ORM write of answers and responses (a before_flush hook).
        keep_tallies(self.sessionmaker)
        # Stored survey versions, parsed once: their ids are this database's.
        self.surveys = SurveyVersions()
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()

    @property
    def is_postgres(self) -> bool:
        """True when running on PostgreSQL."""
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self.sessionmaker() as session, session.begin():
            yield session

    def transaction(self, work: Callable[[Session], T]) -> T:
        """`work(session)` in one transaction, on this thread; returns its result."""
        with self.session() as session:
            return work(session)

    async def run(self, work: Callable[[Session], T]) -> T:
        """`work(session)` in one transaction on a worker thread; the event loop goes on."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.transaction, work)

    async def call(self, func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """`func(*args, **kwargs)` on a worker thread: a use case that owns its transactions."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, partial(func, *args, **kwargs))

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The worker threads for `run` (as many as the pool keeps connections)."""
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.workers, thread_name_prefix="buurtstem-db"
                )
            return self._executor

    def dispose(self) -> None:
        """Stop the worker threads (after their work) and close all pooled connections."""
        with self._executor_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        self.engine.dispose()
