"""Where a fine-tune keeps its files, in one folder of the lake named by its inputs (config.inputs_key):

    data/<split>.parquet   the training and validation images, staged by the job
    checkpoint.pt          model, optimizer, schedule, epoch, history and the best epoch so far: after each epoch
    backbone.pt            the result: the best epoch's backbone state dict, without the head (a `--weights` value)
    backbone.json          its sha256 and lineage, written last: its presence means the fine-tune is finished

Every file is written whole or not at all (storage: an atomic rename on a path, one put on S3), and read back with
torch.load(..., weights_only=True).
"""

from __future__ import annotations

import hashlib
import io

from imagepipe import storage

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "backbone.pt"
DOCUMENT = "backbone.json"


def finetuned_root(lake_root: str, key: str) -> str:
    """The folder of one fine-tune's files under the lake root."""
    return storage.join(lake_root, "finetuned", key)


def _saved(state) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _loaded(data: bytes):
    import torch

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def save_checkpoint(store, state: dict) -> None:
    store.put(CHECKPOINT, _saved(state))


def load_checkpoint(store) -> dict | None:
    found = store.get(CHECKPOINT)
    return None if found is None else _loaded(found.data)


def write_artifact(store, backbone_state: dict, document: dict) -> dict:
    """Write the weights, then their document with the weights' URI and sha256; the document as written."""
    data = _saved(backbone_state)
    store.put(WEIGHTS, data)
    written = {**document, "weights": storage.join(store.where, WEIGHTS), "sha256": hashlib.sha256(data).hexdigest()}
    store.write_json(DOCUMENT, written)
    return written


def read_artifact(store) -> dict | None:
    """The finished fine-tune's document, or None while it is not finished."""
    return store.read_json(DOCUMENT)
