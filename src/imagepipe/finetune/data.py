"""The images a fine-tune learns from: each split staged as one Parquet file in the artifact's folder (so every
training process, on this machine or on a cluster's executors, reads the same images from the lake), decoded with
the images' own preprocessing steps and the backbone's transforms, augmented for training with torchvision's
transforms v2."""

from __future__ import annotations

import io

import torch.utils.data

from imagepipe.featurizer import FeatureSpec
from imagepipe.finetune.config import FinetuneConfig
from imagepipe.preprocessing import preprocess

DATA_COLUMNS = ("sha256", "label", "content")


def split_key(split: str) -> str:
    return f"data/{split}.parquet"


def stage_split(store, split: str, table) -> None:
    """Write one split (an Arrow table of DATA_COLUMNS) where the training processes read it."""
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table.select(list(DATA_COLUMNS)), buffer)
    store.put(split_key(split), buffer.getvalue())


def read_split(store, split: str):
    import pyarrow.parquet as pq

    found = store.get(split_key(split))
    if found is None:
        raise FileNotFoundError(f"{store.where}/{split_key(split)} is missing: the job stages it before training")
    return pq.read_table(io.BytesIO(found.data))


def training_transform(spec: FeatureSpec, config: FinetuneConfig):
    """The backbone's own resize, crop and normalisation as extraction applies them (spec.preprocessing), with the
    configured augmentation: a random resized crop in place of the fixed one, flips, colour jitter."""
    from torchvision.transforms import v2

    preset = spec.preprocessing()
    crop, steps = preset.crop_size[0], config.augmentation_steps()
    if "random_resized_crop" in steps:
        geometry = [v2.RandomResizedCrop(crop, scale=(steps["random_resized_crop"], 1.0),
                                         interpolation=preset.interpolation, antialias=True)]
    else:
        geometry = [v2.Resize(preset.resize_size, interpolation=preset.interpolation, antialias=True),
                    v2.CenterCrop(crop)]
    if "horizontal_flip" in steps:
        geometry.append(v2.RandomHorizontalFlip())
    if "color_jitter" in steps:
        strength = steps["color_jitter"]
        geometry.append(v2.ColorJitter(brightness=strength, contrast=strength, saturation=strength))
    return v2.Compose([v2.PILToTensor(), *geometry, v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(preset.mean, preset.std)])


class ImageDataset(torch.utils.data.Dataset):
    """(input tensor, class index) for each image of a staged split whose label the head knows (a class seen only
    in validation is left out)."""

    def __init__(self, table, label_index: dict[str, int], steps, transform):
        rows = [row for row, label in enumerate(table.column("label").to_pylist()) if label in label_index]
        self.contents = table.column("content").take(rows).to_pylist()
        self.targets = [label_index[label] for label in table.column("label").take(rows).to_pylist()]
        self.steps, self.transform = steps, transform

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        from PIL import Image

        with Image.open(io.BytesIO(self.contents[index])) as image:
            return self.transform(preprocess(image, self.steps)), self.targets[index]
