"""The ``sep`` command line."""
