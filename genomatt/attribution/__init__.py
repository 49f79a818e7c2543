"""Per-base attributions of sequence models: DeepLIFT / DeepSHAP against shuffled references, and other methods."""

from genomatt.attribution.deeplift import DeepLiftShapResult, deep_lift_shap, hypothetical_contributions
from genomatt.attribution.inputs import AttributionResult
from genomatt.attribution.interception import hold_at_sequence
from genomatt.attribution.methods import METHODS, Patterns, attribute, fit_patterns

__all__ = [
    "METHODS",
    "AttributionResult",
    "DeepLiftShapResult",
    "Patterns",
    "attribute",
    "deep_lift_shap",
    "fit_patterns",
    "hold_at_sequence",
    "hypothetical_contributions",
]
