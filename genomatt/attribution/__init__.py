"""Per-base attributions of sequence models: DeepLIFT / DeepSHAP against shuffled references."""

from genomatt.attribution.deeplift import DeepLiftShapResult, deep_lift_shap, hypothetical_contributions

__all__ = ["DeepLiftShapResult", "deep_lift_shap", "hypothetical_contributions"]
from genomatt.attribution.methods import METHODS, AttributionResult, Patterns, attribute, fit_patterns  # noqa: E402
