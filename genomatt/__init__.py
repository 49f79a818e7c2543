"""genomatt: explain what a DNA sequence model has learned."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("genomatt")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

ALPHABET = "ACGT"
