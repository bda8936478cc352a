"""Fine-tuning the run's backbone on the dataset's own images, one process per TorchDistributor slot:

    config.py    FinetuneConfig (hyperparameters), augmentation steps, freezable blocks, the inputs' key; light
    data.py      the staged splits, decoded and transformed as extraction does, augmented for training
    model.py     the backbone (loaded as the featurizer loads it) under a new head, frozen blocks, optimizer
    artifact.py  the fine-tune's folder in the lake: checkpoint, the resulting weights and their document
    train.py     train_backbone, the function each process runs

Only config is light; the others import torch at their top, so import them from their own modules.
"""
