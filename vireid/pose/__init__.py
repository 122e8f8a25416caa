"""vireid.pose."""
