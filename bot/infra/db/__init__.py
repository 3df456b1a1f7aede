"""The database: typed tables, the engine, migrations and every SQL query."""
