"""The engine: Arrow batches of image bytes in, feature vectors (or the reason an image could not be decoded) out."""

import hashlib
import io

import numpy as np
import pyarrow as pa
import pytest
import torch
import torchvision
from PIL import Image

from conftest import exif_rotated_jpeg
from imagepipe.featurizer import FeatureSpec
from imagepipe.featurizer.backbones import TORCHVISION
from imagepipe.featurizer.engine import build_model, encoded_images, extractor_for, is_jpeg, resolve_device

# Small crops keep the CPU-only backbone fast; the feature width does not depend on the crop.
SMALL = 64


def encoded(colour, image_format="PNG", size=(80, 60)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=image_format)
    return buffer.getvalue()


def striped(image_format="PNG") -> bytes:
    image = Image.new("RGB", (96, 96), "white")
    for x in range(0, 96, 8):
        image.paste((0, 0, 0), (x, 0, x + 4, 96))
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def image_batch(contents: list[bytes]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "sha256": [hashlib.sha256(content).hexdigest() for content in contents],
            "label": [f"label{index}" for index in range(len(contents))],
            "window_id": ["20260101T000000Z_20260102T000000Z"] * len(contents),
            "content": pa.array(contents, type=pa.binary()),
        }
    )


def save_resnet18_state_dict(path, seed: int) -> None:
    torch.manual_seed(seed)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)


@pytest.fixture
def fresh_extractors():
    # extractor_for caches built models per process; clearing it makes each call build from the spec again.
    extractor_for.cache_clear()
    yield
    extractor_for.cache_clear()



def test_state_dict_file_builds_the_backbone_from_its_weights(tmp_path):
    path = tmp_path / "backbone.pt"
    save_resnet18_state_dict(path, seed=7)
    saved = torch.load(path, weights_only=True)

    model = build_model(FeatureSpec(weights=str(path), image_size=SMALL))

    assert torch.equal(model.conv1.weight, saved["conv1.weight"])
    assert model(torch.zeros(1, 3, SMALL, SMALL)).shape == (1, 512)



@pytest.mark.parametrize("binary_type", [pa.binary(), pa.large_binary()])
def test_images_are_read_from_the_arrow_column_as_they_were_written(binary_type):
    contents = [encoded("red"), b"", encoded("navy", "JPEG"), b"\xff\xd8\xff broken"]
    column = pa.array(contents, type=binary_type)

    assert [bytes(image) for image in encoded_images(column)] == contents
    assert [bytes(image) for image in encoded_images(column.slice(1, 2))] == contents[1:3]
    assert encoded_images(pa.array([contents[0], None], type=binary_type)) == [contents[0], None]


def extract_batch(batch, spec):
    """The engine's output for one Arrow batch, as the Spark job drives it."""
    return next(extractor_for(spec).extract_batches(iter([batch])))


def test_extract_batch_replaces_content_by_features(fresh_extractors):
    contents = [encoded("red"), encoded("navy", "JPEG", size=(50, 120)), striped("GIF")]
    batch = image_batch(contents)

    result = extract_batch(batch, FeatureSpec("resnet18", "random:0", SMALL))

    assert result.schema.names == ["sha256", "label", "window_id", "features", "error"]
    assert result.schema.field("features").type == pa.list_(pa.float32())
    assert result.column("error").to_pylist() == [None, None, None]
    assert result.column("sha256").to_pylist() == [hashlib.sha256(content).hexdigest() for content in contents]
    assert result.column("label").to_pylist() == ["label0", "label1", "label2"]
    assert result.column("window_id").to_pylist() == ["20260101T000000Z_20260102T000000Z"] * 3
    assert [len(vector) for vector in result.column("features").to_pylist()] == [512, 512, 512]


def test_extract_batch_with_seeded_random_weights_is_deterministic(fresh_extractors):
    batch = image_batch([encoded("red"), striped()])
    spec = FeatureSpec("resnet18", "random:0", SMALL)

    first = extract_batch(batch, spec)
    extractor_for.cache_clear()  # the second call builds its backbone anew from the seed
    second = extract_batch(batch, spec)

    assert first.column("features").equals(second.column("features"))


def test_different_images_give_different_features(fresh_extractors):
    result = extract_batch(image_batch([encoded("red"), encoded("navy"), striped()]),
                           FeatureSpec("resnet18", "random:0", SMALL))

    red, navy, stripes = (np.array(vector) for vector in result.column("features").to_pylist())
    assert not np.allclose(red, navy)
    assert not np.allclose(red, stripes)
    assert not np.allclose(navy, stripes)


def test_features_of_an_image_do_not_depend_on_its_batch(fresh_extractors):
    spec = FeatureSpec("resnet18", "random:0", SMALL)

    alone = extract_batch(image_batch([striped()]), spec).column("features").to_pylist()[0]
    among_others = extract_batch(image_batch([encoded("red"), striped(), encoded("navy")]),
                                 spec).column("features").to_pylist()[1]

    np.testing.assert_allclose(among_others, alone, rtol=1e-4, atol=1e-5)


def test_extract_batch_of_no_rows_gives_no_rows(fresh_extractors):
    result = extract_batch(image_batch([]), FeatureSpec("resnet18", "random:0", SMALL))

    assert result.num_rows == 0
    assert result.schema.names == ["sha256", "label", "window_id", "features", "error"]
    assert result.schema.field("features").type == pa.list_(pa.float32())


def test_an_image_that_does_not_decode_is_recorded_and_the_batch_goes_on(fresh_extractors):
    good = encoded("red", "JPEG")
    result = extract_batch(image_batch([good, good[: len(good) // 3], b"not an image"]),
                           FeatureSpec("resnet18", "random:0", SMALL))

    features, errors = result.column("features").to_pylist(), result.column("error").to_pylist()
    assert len(features[0]) == 512 and errors[0] is None
    assert features[1] is None and errors[1].startswith("undecodable: ")
    assert features[2] is None and errors[2].startswith("undecodable: ")


def test_streamed_batches_come_back_in_order_with_their_own_rows(fresh_extractors):
    spec = FeatureSpec("resnet18", "random:0", SMALL)
    batches = [image_batch([encoded("red")]), image_batch([striped(), encoded("navy")]), image_batch([])]

    results = list(extractor_for(spec).extract_batches(iter(batches)))

    assert [result.num_rows for result in results] == [1, 2, 0]
    expected_first = extract_batch(batches[1], spec).column("features").to_pylist()
    np.testing.assert_allclose(results[1].column("features").to_pylist(), expected_first, rtol=1e-5)


@pytest.mark.parametrize("backbone", [*sorted(TORCHVISION), "timm:tf_efficientnet_lite0", "timm:mobilenetv3_small_050",
                                      "timm:vit_small_patch14_dinov2.lvd142m"])
def test_every_backbone_gives_vectors_of_its_declared_width(backbone, fresh_extractors):
    spec = FeatureSpec(backbone, "random:0", FeatureSpec(backbone, "random:0").fixed_size() or SMALL)
    result = extract_batch(image_batch([encoded("red")]), spec)

    assert len(result.column("features").to_pylist()[0]) == spec.dim


@pytest.mark.parametrize(
    "cuda_available, task_gpus, device",
    [(False, None, "cpu"), (False, ["1"], "cpu"), (True, None, "cuda:0"), (True, ["3", "4"], "cuda:3")],
)
def test_device_is_the_task_gpu_when_spark_assigned_one(cuda_available, task_gpus, device):
    assert resolve_device(cuda_available, task_gpus) == device


def test_jpeg_is_recognised_by_content_not_name():
    assert is_jpeg(encoded("red", "JPEG"))
    assert not is_jpeg(encoded("red", "PNG"))
    assert not is_jpeg(b"")


def rotated_and_upright_jpegs() -> tuple[bytes, bytes]:
    """The striped image with a red band on top (telling up from down) as an EXIF-rotated JPEG and upright."""
    upright = Image.open(io.BytesIO(striped()))
    upright.paste((200, 0, 0), (0, 0, 96, 30))
    straight = io.BytesIO()
    upright.save(straight, format="JPEG", quality=95)
    return exif_rotated_jpeg(upright), straight.getvalue()


def backbone_inputs(spec, contents):
    return extractor_for(spec).prepare(contents).inputs


def test_exif_rotated_photo_reaches_the_backbone_upright(fresh_extractors):
    rotated, upright = rotated_and_upright_jpegs()

    turned = backbone_inputs(FeatureSpec("resnet18", "random:0", SMALL), [rotated, upright])
    as_stored = backbone_inputs(FeatureSpec("resnet18", "random:0", SMALL, ()), [rotated, upright])

    assert (turned[0] - turned[1]).abs().mean() < 0.1
    assert (as_stored[0] - as_stored[1]).abs().mean() > 0.5


@pytest.mark.parametrize(
    "steps, image, on_gpu",
    [
        (("exif_transpose",), "upright", True),
        (("exif_transpose",), "rotated", False),  # nvJPEG would ignore the tag
        ((), "rotated", True),
        (("exif_transpose",), "png", False),
        (("exif_transpose", "median:3"), "upright", False),  # a Pillow step: Pillow decodes
        (("pad_to_square",), "upright", False),
        (("exif_transpose",), "broken", False),  # Pillow's decoder records why
    ],
)
def test_gpu_path_leaves_to_pillow_the_images_nvjpeg_would_get_wrong(steps, image, on_gpu, fresh_extractors):
    rotated, upright = rotated_and_upright_jpegs()
    contents = {"upright": upright, "rotated": rotated, "png": striped(), "broken": b"\xff\xd8\xff" + b"\0" * 20}

    assert extractor_for(FeatureSpec("resnet18", "random:0", SMALL, steps)).decodes_on_gpu(contents[image]) is on_gpu

