"""The network a fine-tune trains: the run's backbone, loaded as the featurizer loads it, under a new linear head
sized to the dataset's labels; its first blocks optionally frozen; the optimizer and its cosine schedule."""

from __future__ import annotations

import torch

from imagepipe.featurizer import FeatureSpec
from imagepipe.featurizer.engine import load_backbone
from imagepipe.finetune.config import FinetuneConfig, freezable_blocks


class ImageClassifier(torch.nn.Module):
    """A backbone whose head was replaced by an identity, and the new head on its features."""

    def __init__(self, backbone, head):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, images):
        return self.head(self.backbone(images))


def build_classifier(spec: FeatureSpec, classes: int, config: FinetuneConfig):
    """(model, frozen): the backbone with spec's weights under a new head (model.backbone, model.head), and the
    names of its frozen modules, whose parameters take no gradient."""
    backbone = load_backbone(spec)
    torch.manual_seed(config.seed)  # the same head on every process
    model = ImageClassifier(backbone, torch.nn.Linear(spec.dim, classes))
    prefixes = tuple(prefix for block in freezable_blocks(spec.backbone)[: config.freeze] for prefix in block)
    for name, parameter in backbone.named_parameters():
        if name.startswith(prefixes):
            parameter.requires_grad_(False)
    modules = dict(backbone.named_modules())
    frozen = [prefix.rstrip(".") for prefix in prefixes if prefix.rstrip(".") in modules]
    return model, frozen


def set_training(model, frozen: list[str]) -> None:
    """Training mode, except the frozen modules: their batch-norm statistics stay those of the base weights."""
    model.train()
    for name in frozen:
        model.backbone.get_submodule(name).eval()


def optimizer_and_schedule(model, config: FinetuneConfig, steps_per_epoch: int):
    """The optimizer over the trainable parameters, and a cosine decay of its learning rate to zero over every step
    of every epoch (stepped once per batch)."""
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(trainable, lr=config.learning_rate, momentum=0.9, nesterov=True,
                                    weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, config.epochs * steps_per_epoch))
    return optimizer, schedule
