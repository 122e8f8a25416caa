"""vireid.engine."""
