"""vireid.cli."""
