"""Per-base attributions of sequence models: DeepLIFT / DeepSHAP against shuffled references, and other methods.

The names below are imported from their modules on first use, so that importing a light module of this
package (:mod:`genomatt.attribution.choices`) does not load torch.
"""

from genomatt import names_of_modules

_MODULES = {
    "METHODS": "methods",
    "AttributionResult": "inputs",
    "DeepLiftShapResult": "deeplift",
    "Patterns": "methods",
    "attribute": "methods",
    "deep_lift_shap": "deeplift",
    "fit_patterns": "methods",
    "hold_at_sequence": "interception",
    "hypothetical_contributions": "deeplift",
}

__all__ = list(_MODULES)
__getattr__ = names_of_modules(__name__, _MODULES)
