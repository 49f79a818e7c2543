"""What users read: motif and region logos, and the self-contained HTML report."""

# Here rather than in :mod:`genomatt.report.html` so that ``genomatt report --help`` reads it without matplotlib.
DEFAULT_EXAMPLE_REGIONS = 6
"""Example regions the report draws unless told otherwise."""
