"""Feature extraction with a frozen torchvision or timm backbone, in five parts:

    backbones.py      the backbones on offer by name: torchvision's and timm's; light, for DAG files
    spec.py           what defines a feature space: FeatureSpec, its transforms and its fingerprint; light
    timm_backbone.py  timm models: their pretrained config, features, stages and hub weights (imports timm inside)
    weights.py        the weights a spec names, fetched (object storage, torchvision's and the hub's caches) and
                      hashed: resolve_weights
    engine.py         torch: decoding, the backbone, and FeatureExtractor turning Arrow batches into feature vectors

The spec's names are importable from here; the weights and the engine from their own modules.
"""

from imagepipe.featurizer.spec import (
    CONTENT_COLUMN,
    ERROR_COLUMN,
    FEATURES_COLUMN,
    FeatureSpec,
    ResolvedWeights,
)

__all__ = [
    "CONTENT_COLUMN",
    "ERROR_COLUMN",
    "FEATURES_COLUMN",
    "FeatureSpec",
    "ResolvedWeights",
]
