"""Per-base attributions of sequence models: DeepLIFT / DeepSHAP against shuffled references."""

from genomatt.attribution.deeplift import DeepLiftShapResult, deep_lift_shap, hypothetical_contributions
from genomatt.attribution.interception import hold_at_sequence

__all__ = ["DeepLiftShapResult", "deep_lift_shap", "hold_at_sequence", "hypothetical_contributions"]
from genomatt.attribution.methods import METHODS, AttributionResult, Patterns, attribute, fit_patterns  # noqa: E402
