"""Persistence: SQLAlchemy models, Alembic migrations and every SQL statement of buurtstem."""
