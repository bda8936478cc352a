"""Feature extraction with a frozen torchvision backbone, in three parts:

    spec.py     what defines a feature space: the backbones, FeatureSpec and its fingerprint; light, for DAG files
    weights.py  the weights a spec names, fetched (object storage, torchvision's cache) and hashed: resolve_weights
    engine.py   torch: decoding, the backbone, and FeatureExtractor turning Arrow batches into feature vectors

The spec's names are importable from here; the weights and the engine from their own modules.
"""

from imagepipe.featurizer.spec import (
    BACKBONES,
    CONTENT_COLUMN,
    ERROR_COLUMN,
    FEATURES_COLUMN,
    Backbone,
    FeatureSpec,
    ResolvedWeights,
    feature_dim,
)

__all__ = [
    "BACKBONES",
    "CONTENT_COLUMN",
    "ERROR_COLUMN",
    "FEATURES_COLUMN",
    "Backbone",
    "FeatureSpec",
    "ResolvedWeights",
    "feature_dim",
]
