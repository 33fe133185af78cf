"""alembic migrations of the history store, shipped as package data."""
