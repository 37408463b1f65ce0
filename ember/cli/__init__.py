"""The ``ember`` command line. Nothing in ember imports this package."""
