"""The feature-extraction engine: Arrow record batches of image bytes in, float32 feature vectors out.

Pure torch/torchvision code with no Spark import, so it runs (and is benchmarked) on a machine without Spark; the
Spark job calls `FeatureExtractor.extract_batches` from mapInArrow. torch is imported inside functions, where the
model is built and run on the executor.
"""

from __future__ import annotations

import collections
import functools
import io
import itertools
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from imagepipe.featurizer import timm_backbone
from imagepipe.featurizer.backbones import TORCHVISION, is_timm, timm_model
from imagepipe.featurizer.spec import CONTENT_COLUMN, ERROR_COLUMN, FEATURES_COLUMN, FeatureSpec
from imagepipe.featurizer.weights import weights_file
from imagepipe.preprocessing import EncodedImage, gpu_can_apply, is_upright, preprocess

# nvJPEG reads the images straight from the Arrow batch's read-only buffer (encoded_images): torch warns that the
# tensors over it must not be written to, and nothing writes to them.
warnings.filterwarnings("ignore", message="The given buffer is not writable", category=UserWarning)


def load_backbone(spec: FeatureSpec):
    """The spec's backbone with its weights and its head replaced by an identity, trainable, on the CPU. A state-dict
    file may hold the head (torchvision's checkpoints) or not (a fine-tuned backbone): its head keys are dropped,
    every other key must match."""
    import torch
    import torchvision.models

    if spec.random_seed is not None:
        torch.manual_seed(spec.random_seed)
    if is_timm(spec.backbone):
        if spec.random_seed is not None:
            return timm_backbone.build(timm_model(spec.backbone), None, pretrained=False)
        if spec.is_file:
            return timm_backbone.build(timm_model(spec.backbone), weights_file(spec), pretrained=False)
        return timm_backbone.build(spec.timm_weights_model, weights_file(spec), pretrained=True)
    backbone = TORCHVISION[spec.backbone]
    model = getattr(torchvision.models, backbone.builder)(weights=None)
    *parents, head = backbone.head.split(".")
    owner = functools.reduce(
        lambda module, name: module[int(name)] if name.isdigit() else getattr(module, name), parents, model
    )
    if head.isdigit():
        owner[int(head)] = torch.nn.Identity()
    else:
        setattr(owner, head, torch.nn.Identity())
    if spec.random_seed is None:
        state_dict = torch.load(weights_file(spec), map_location="cpu", weights_only=True)
        model.load_state_dict({key: value for key, value in state_dict.items()
                               if not key.startswith(f"{backbone.head}.")})
    return model


def build_model(spec: FeatureSpec):
    """The frozen backbone with its head replaced by an identity, in eval mode, on the CPU."""
    model = load_backbone(spec)
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def resolve_device(cuda_available: bool, task_gpus: list[str] | None = None) -> str:
    """cuda:<n> for the GPU Spark assigned to the task (its first one), cuda:0 when torch sees a GPU but Spark
    assigned none (local mode), else cpu."""
    if not cuda_available:
        return "cpu"
    return f"cuda:{task_gpus[0]}" if task_gpus else "cuda:0"


def encoded_images(column) -> list[EncodedImage | None]:
    """The images of an Arrow binary column as views of its data buffer, without a copy. On a GPU, copying each
    batch's JPEGs into Python bytes and again into tensors held the interpreter lock long enough to slow the decoding
    threads; a column with nulls (no image) is read the plain way."""
    import numpy as np
    import pyarrow as pa

    if column.null_count or not (pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)):
        return column.to_pylist()
    _, offsets, data = column.buffers()
    width = np.int64 if pa.types.is_large_binary(column.type) else np.int32
    bounds = np.frombuffer(offsets, dtype=width)[column.offset : column.offset + len(column) + 1].tolist()
    view = memoryview(data if data is not None else b"").cast("B")
    return [view[start:end] for start, end in itertools.pairwise(bounds)]


def is_jpeg(content: EncodedImage) -> bool:
    return content[:3] == b"\xff\xd8\xff"


@dataclass
class PreparedBatch:
    """A batch ready for the backbone: input tensor (rows that decoded) and, per row, its index in the tensor or
    the reason it could not be decoded."""

    inputs: object
    positions: list[int | str]
    ready: object = None  # CUDA event, recorded on the decoding stream, that the compute stream waits on


class FeatureExtractor:
    """One backbone held on one device, turning encoded images into feature vectors.

    On a GPU: JPEGs are decoded on the GPU in batches (nvJPEG), other formats on the CPU; the model runs in bf16
    autocast with channels_last; the next batches are decoded on side streams while the current one computes. On
    the CPU: fp32, channels_last; the next batch is decoded by a background thread while torch computes with
    `threads` threads.
    """

    def __init__(
        self, spec: FeatureSpec, device: str = "cpu", threads: int | None = None, decode_workers: int | None = None
    ):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.spec = spec
        self.device = torch.device(device)
        self.transform = spec.preprocessing()
        self.gpu_can_preprocess = gpu_can_apply(spec.steps)
        # Batches decoded ahead of the one computing, each by its own thread (and CUDA stream): decoding a batch
        # takes longer than a small backbone's forward pass on a GPU, and two decoders measured fastest on an H200
        # (bench/RESULTS.md); on the CPU one, which shares the task's cores.
        self.decode_workers = decode_workers or (2 if self.device.type == "cuda" else 1)
        self._thread_state = threading.local()
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            torch.backends.cudnn.benchmark = True  # batches keep one shape: tune the convolutions once
        # channels_last suits both cuDNN's tensor cores and oneDNN's CPU kernels (1.37x for resnet18 on this
        # project's 2-core AVX2 machine, bench/RESULTS.md).
        self.model = build_model(spec).to(self.device, memory_format=torch.channels_last)

    def _decode_stream(self):
        """This thread's CUDA stream for decoding, so batches decoded by different threads overlap."""
        import torch

        if not hasattr(self._thread_state, "stream"):
            self._thread_state.stream = torch.cuda.Stream(self.device)
        return self._thread_state.stream

    # -- decoding -------------------------------------------------------------------------------------------------

    def _decode_with_pil(self, content: EncodedImage):
        """The image decoded by Pillow, after the spec's preprocessing steps (RGB)."""
        from PIL import Image

        with Image.open(io.BytesIO(content)) as image:
            return preprocess(image, self.spec.steps)

    def _decode_on_cpu(self, content: EncodedImage):
        from torchvision.transforms.functional import pil_to_tensor

        return pil_to_tensor(self._decode_with_pil(content))

    def decodes_on_gpu(self, content: EncodedImage) -> bool:
        """Whether nvJPEG decodes this image on the GPU path. Correctness first: nvJPEG ignores EXIF orientation
        (torchvision applies it on the CPU decoder only) and the Pillow steps have no GPU counterpart here, so a
        run with such steps, or a JPEG that exif_transpose would turn, is decoded by Pillow like any non-JPEG."""
        if not (is_jpeg(content) and self.gpu_can_preprocess):
            return False
        if "exif_transpose" not in self.spec.steps:
            return True
        try:
            return is_upright(content)
        except Exception:  # noqa: BLE001 - a header Pillow cannot read: Pillow's decoder records why, as for any image
            return False

    def _decode_jpegs_on_gpu(self, contents: list[EncodedImage]) -> list:
        """Decoded CHW uint8 tensors on the GPU, or an error string for each JPEG that nvJPEG refused."""
        import torch
        from torchvision.io import ImageReadMode, decode_jpeg

        encoded = [torch.frombuffer(content, dtype=torch.uint8) for content in contents]
        try:
            return decode_jpeg(encoded, mode=ImageReadMode.RGB, device=self.device)
        except RuntimeError:
            decoded = []  # isolate the broken images: one call per image
            for data in encoded:
                try:
                    decoded.append(decode_jpeg(data, mode=ImageReadMode.RGB, device=self.device))
                except RuntimeError as error:
                    decoded.append(f"undecodable: {str(error).splitlines()[0]}")
            return decoded

    def _preprocess(self, images: list):
        """The weights' own resize, crop and normalisation, applied to images of one shape at a time (a camera's
        photos share a shape), so a batch costs a few kernel launches per shape rather than per image."""
        import torch

        by_shape: dict[tuple, list[int]] = {}
        for row, image in enumerate(images):
            by_shape.setdefault(tuple(image.shape), []).append(row)
        prepared = [None] * len(images)
        for rows in by_shape.values():
            for row, tensor in zip(rows, self.transform(torch.stack([images[row] for row in rows])), strict=True):
                prepared[row] = tensor
        return torch.stack(prepared)

    def prepare(self, contents: list[EncodedImage]) -> PreparedBatch:
        """Decode and preprocess one batch (on this thread's decoding stream when on a GPU)."""
        return self._prepare_on_gpu(contents) if self.device.type == "cuda" else self._prepare_on_cpu(contents)

    def _prepare_on_cpu(self, contents: list[EncodedImage]) -> PreparedBatch:
        """PIL decodes and resizes (its SIMD resize costs half of resizing a decoded tensor), the weights' transform
        finishes each image."""
        import torch

        with torch.inference_mode():
            decoded = _decode_each(lambda content: self.transform(self._decode_with_pil(content)), contents)
            positions, tensors = _collect(decoded)
            inputs = torch.stack(tensors).contiguous(memory_format=torch.channels_last) if tensors else None
        return PreparedBatch(inputs, positions)

    def _prepare_on_gpu(self, contents: list[EncodedImage]) -> PreparedBatch:
        """nvJPEG decodes the JPEGs it can (decodes_on_gpu) in one call, PIL the rest; images of one shape are resized
        together on the GPU."""
        import torch

        stream = self._decode_stream()
        with torch.cuda.stream(stream), torch.inference_mode():
            jpeg_rows = [row for row, content in enumerate(contents) if self.decodes_on_gpu(content)]
            on_gpu = (dict(zip(jpeg_rows, self._decode_jpegs_on_gpu([contents[row] for row in jpeg_rows]), strict=True))
                      if jpeg_rows else {})
            others = iter(_decode_each(self._decode_on_cpu, [c for row, c in enumerate(contents) if row not in on_gpu]))
            images = [on_gpu[row] if row in on_gpu else next(others) for row in range(len(contents))]
            images = [
                image.pin_memory().to(self.device, non_blocking=True)
                if not isinstance(image, str) and image.device.type == "cpu" else image
                for image in images
            ]
            positions, decoded = _collect(images)
            inputs = self._preprocess(decoded).contiguous(memory_format=torch.channels_last) if decoded else None
            ready = torch.cuda.Event()
            ready.record(stream)
        return PreparedBatch(inputs, positions, ready)

    # -- inference ------------------------------------------------------------------------------------------------

    def run(self, prepared: PreparedBatch):
        """float32 array (rows that decoded, feature_dim) for a prepared batch."""
        import numpy as np
        import torch

        if prepared.inputs is None:
            return np.zeros((0, self.spec.dim), dtype=np.float32)
        with torch.inference_mode():
            if self.device.type == "cuda":
                torch.cuda.current_stream(self.device).wait_event(prepared.ready)
                # The side stream allocated the inputs; tell the allocator the compute stream uses them too.
                prepared.inputs.record_stream(torch.cuda.current_stream(self.device))
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    outputs = self.model(prepared.inputs)
                return outputs.float().cpu().numpy()
            return self.model(prepared.inputs).float().numpy()

    def features(self, contents: list[EncodedImage]):
        """(vectors, errors): one float32 vector or None per image, and one error reason or None per image."""
        prepared = self.prepare(contents)
        return _assemble(self.run(prepared), prepared.positions)

    def extract_batches(self, batches: Iterator) -> Iterator:
        """Arrow record batches with a content column in, the same rows with features and error columns out, in
        order. While the backbone computes batch n, batches n+1 .. n+decode_workers are decoded in background
        threads."""
        with ThreadPoolExecutor(max_workers=self.decode_workers) as decoder:
            pending: collections.deque = collections.deque()
            for batch in batches:
                pending.append((batch, decoder.submit(self.prepare, encoded_images(batch.column(CONTENT_COLUMN)))))
                if len(pending) > self.decode_workers:
                    yield self._finish(*pending.popleft())
            while pending:
                yield self._finish(*pending.popleft())

    def _finish(self, batch, prepared_future):
        prepared = prepared_future.result()
        return to_feature_batch(batch, *_assemble(self.run(prepared), prepared.positions))


def _decode_each(decode, contents: list[EncodedImage]) -> list:
    """decode(content) for each image, or the reason it could not be decoded."""
    results = []
    for content in contents:
        try:
            results.append(decode(content))
        except Exception as error:  # noqa: BLE001 - any decoder failure is this image's, recorded as such
            results.append(f"undecodable: {type(error).__name__}: {error}")
    return results


def _collect(images: list) -> tuple[list[int | str], list]:
    """(positions, tensors): per image its index among the decoded tensors, or its error reason."""
    positions: list[int | str] = []
    tensors = []
    for image in images:
        if isinstance(image, str):
            positions.append(image)
        else:
            positions.append(len(tensors))
            tensors.append(image)
    return positions, tensors


def _assemble(vectors, positions: list[int | str]):
    features = [vectors[position] if isinstance(position, int) else None for position in positions]
    errors = [position if isinstance(position, str) else None for position in positions]
    return features, errors


def to_feature_batch(batch, features: list, errors: list[str | None]):
    """The batch without its content column, plus list<float32> features (null where decoding failed) and error."""
    import numpy as np
    import pyarrow as pa

    offsets, values, valid, end = [0], [], [], 0
    for vector in features:
        valid.append(vector is not None)
        if vector is not None:
            values.append(vector)
            end += len(vector)
        offsets.append(end)
    flat = pa.array(np.concatenate(values) if values else np.zeros(0, dtype=np.float32), type=pa.float32())
    mask = pa.array([not ok for ok in valid], type=pa.bool_())
    column = pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), flat, mask=mask)
    keep = [name for name in batch.schema.names if name != CONTENT_COLUMN]
    return pa.RecordBatch.from_arrays(
        [batch.column(name) for name in keep] + [column, pa.array(errors, type=pa.string())],
        names=keep + [FEATURES_COLUMN, ERROR_COLUMN],
    )


@functools.lru_cache(maxsize=2)
def extractor_for(spec: FeatureSpec, device: str = "cpu", threads: int | None = None) -> FeatureExtractor:
    """The extractor for `spec` on `device`, built once per Python process and reused across batches and tasks."""
    return FeatureExtractor(spec, device, threads)
