"""Sinks: where results go (the ClickHouse warehouse)."""
