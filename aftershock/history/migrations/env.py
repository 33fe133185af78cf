"""alembic's environment: always run by :mod:`aftershock.history.store` on a connection it
opened and locked (one migrator at a time), never from the alembic command line."""

from __future__ import annotations

from alembic import context

from aftershock.history.schema import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  version_table=VERSION_TABLE, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
