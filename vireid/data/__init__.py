"""vireid.data."""
