"""The version of vireid, in a module of its own: every module that records or prints it
imports it from here, so none imports the package root (``setup.cfg`` reads it too)."""
__version__ = "0.1.0"
