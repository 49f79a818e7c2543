"""genomatt: explain what a DNA sequence model has learned."""

import importlib
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("genomatt")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

ALPHABET = "ACGT"


def names_of_modules(package: str, modules: dict[str, str]) -> Callable[[str], object]:
    """A package's ``__getattr__`` that imports each public name from its module on first use (PEP 562).

    Parameters
    ----------
    package
        The package's ``__name__``.
    modules
        Public name → the package's module that defines it.
    """

    def attribute(name: str) -> object:
        if name not in modules:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{modules[name]}"), name)

    return attribute
