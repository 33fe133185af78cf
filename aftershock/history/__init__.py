"""The run history: every run's results kept in a database (SQLite or PostgreSQL), the
limits learned from it (:mod:`aftershock.checks.learn` does the learning, purely), and
``aftershock history``.

- :mod:`.schema`: the tables; :mod:`.store`: opening, migrating, reading and writing;
- :mod:`.record`: results.json to rows; :mod:`.session`: the hooks a run calls;
- :mod:`.command`: ``aftershock history`` and ``aftershock history import``.
"""
