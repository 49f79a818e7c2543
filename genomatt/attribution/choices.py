"""The named variants callers choose among: DeepLIFT rules, profile-target conventions, the methods an
evaluation compares and how it removes positions.

Free of torch, so that ``genomatt attribute --help`` and ``genomatt evaluate --help`` list them without
loading the attribution engine.
"""

RULES = ("rescale", "revealcancel", "genomics_default")
"""DeepLIFT rules for elementwise nonlinearities (:func:`~genomatt.attribution.deep_lift_shap`)."""

MAX_RULES = ("cross_max", "shapley")
"""DeepLIFT rules for a max over a whole axis (a global max pool); the first is the default."""

PROFILE_CONVENTIONS = ("bpnet", "held")
"""Profile target conventions; the first is the default."""

EVALUATION_METHODS: dict[str, tuple[str, dict]] = {
    "deeplift": ("deeplift", {"rule": "rescale"}),
    "deeplift_revealcancel": ("deeplift", {"rule": "revealcancel"}),
    "deeplift_genomics_default": ("deeplift", {"rule": "genomics_default"}),
    "deeplift_max_shapley": ("deeplift", {"max_rule": "shapley"}),
    "saliency": ("saliency", {}),
    "gradient_x_input": ("gradient_x_input", {}),
    "integrated_gradients": ("integrated_gradients", {}),
    "epsilon_lrp": ("epsilon_lrp", {}),
    "occlusion": ("occlusion", {}),
    "ism": ("ism", {}),
    "patternnet": ("patternnet", {}),
    "patternattribution": ("patternattribution", {}),
}
"""Name in the evaluation → (method of :func:`~genomatt.attribution.attribute`, its options)."""

REMOVALS = ("shuffle", "n")
"""How Sensitivity-n removes a position: the base of a dinucleotide shuffle, or ``N``."""

MIN_SUBSETS = 3
"""Random subsets of each size per region that Sensitivity-n needs: a correlation over fewer is undefined or ±1."""
