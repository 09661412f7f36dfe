"""ingest: owns the DuckDB warehouse (schema, migrations, exactly-once loading, quarantine)."""
