"""The ``genomatt`` command line: one subcommand per pipeline stage."""
