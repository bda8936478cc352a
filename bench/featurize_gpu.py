"""GPU benchmark of the feature-extraction engine alone: JPEG bytes in Arrow batches -> float32 features.

Runs where there is a GPU but no Java or Spark: it feeds FeatureExtractor.extract_batches the same Arrow record
batches (sha256, label, window_id, content) that the Spark job hands it from mapInArrow, and prints, per backbone,
the end-to-end images/s next to the backbone-only rate (random inputs already on the GPU) and the decode+preprocess
rate measured in the same run. It also checks the GPU path against the CPU path on the same images and exercises the
CPU-decode fallback (PNG, and a JPEG whose EXIF orientation must be applied) and an undecodable image on the GPU.
With --exif every JPEG carries a camera-like EXIF block (Orientation 1), as photos from phones and cameras do, so the
engine's per-image orientation check reads a real header.

    PYTHONPATH=src python3 bench/featurize_gpu.py --images 8192 --batch-size 512 --json results.json
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import platform
import time
from functools import partial
from multiprocessing import Pool


def camera_exif(orientation: int) -> bytes:
    """An EXIF block like a phone's: maker, model, time, orientation."""
    from PIL import Image

    from imagepipe.preprocessing import EXIF_ORIENTATION_TAG

    exif = Image.Exif()
    exif.update({0x010F: "Imagepipe", 0x0110: "Bench Camera", 0x0132: "2026:11:27 10:00:00",
                 EXIF_ORIENTATION_TAG: orientation})
    return exif.tobytes()


def synthetic_jpeg(seed: int, exif: bool = False) -> bytes:
    """A 500x375 photo-like JPEG of about 55 KiB: smooth gradients, shapes and sensor-like noise; with `exif`, an
    upright camera EXIF block."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:375, 0:500]
    base = np.stack([(x * rng.uniform(0.1, 0.5) + y * rng.uniform(0.1, 0.5) + rng.uniform(0, 255)) % 256
                     for _ in range(3)], -1)
    image = Image.fromarray(base.astype("uint8"))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = rng.integers(0, 450), rng.integers(0, 330)
        draw.ellipse((x0, y0, x0 + rng.integers(10, 120), y0 + rng.integers(10, 120)),
                     fill=tuple(rng.integers(0, 255, 3).tolist()))
    noisy = np.asarray(image).astype("int16") + rng.normal(0, 9, (375, 500, 3)).astype("int16")
    buffer = io.BytesIO()
    extra = {"exif": camera_exif(1)} if exif else {}
    Image.fromarray(noisy.clip(0, 255).astype("uint8")).save(buffer, format="JPEG", quality=90, **extra)
    return buffer.getvalue()


def arrow_batches(contents: list[bytes], batch_size: int) -> list:
    import pyarrow as pa

    batches = []
    for start in range(0, len(contents), batch_size):
        chunk = contents[start : start + batch_size]
        batches.append(
            pa.RecordBatch.from_pydict(
                {
                    "sha256": [hashlib.sha256(content).hexdigest() for content in chunk],
                    "label": ["bench"] * len(chunk),
                    "window_id": ["20260101T000000.000000Z_20260102T000000.000000Z"] * len(chunk),
                    "content": pa.array(chunk, type=pa.binary()),
                }
            )
        )
    return batches


def timed(function, repeats: int = 2) -> float:
    """Best wall-clock seconds of `repeats` calls (after the caller's warm-up)."""
    import torch

    best = float("inf")
    for _ in range(repeats):
        torch.cuda.synchronize()
        started = time.perf_counter()
        function()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return best


def bench_backbone(backbone: str, batches: list, batch_size: int, images: int, decode_workers: list[int]) -> dict:
    import torch

    from imagepipe.featurizer import FeatureSpec
    from imagepipe.featurizer.engine import FeatureExtractor, encoded_images

    extractor = FeatureExtractor(FeatureSpec(backbone, "random:0", 224), device="cuda:0")

    def end_to_end():
        rows = sum(batch.num_rows for batch in extractor.extract_batches(iter(batches)))
        assert rows == images

    def prepare_only():
        for batch in batches:
            extractor.prepare(encoded_images(batch.column("content")))

    inputs = torch.randn(batch_size, 3, 224, 224, device="cuda:0").contiguous(memory_format=torch.channels_last)

    def model_only():
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            for _ in range(images // batch_size):
                extractor.model(inputs)

    end_to_end(), prepare_only(), model_only()  # warm-up: cuDNN autotuning, nvJPEG and allocator caches
    by_workers = {}
    for workers in decode_workers:
        extractor.decode_workers = workers
        end_to_end()
        by_workers[workers] = images / timed(end_to_end)
    result = {
        "backbone": backbone,
        "end_to_end_images_per_s": max(by_workers.values()),
        "end_to_end_by_decode_workers": by_workers,
        "decode_preprocess_images_per_s": images / timed(prepare_only),
        "model_only_images_per_s": (images // batch_size * batch_size) / timed(model_only),
        "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
    }
    return result


def check_paths(contents: list[bytes]) -> dict:
    """GPU vs CPU on the same images, plus a PNG and a JPEG turned by its EXIF orientation (both decoded by Pillow on
    the GPU path) and a broken JPEG on the GPU."""
    import numpy as np
    from PIL import Image

    from imagepipe.featurizer import FeatureSpec
    from imagepipe.featurizer.engine import FeatureExtractor

    png = io.BytesIO()
    Image.open(io.BytesIO(contents[0])).save(png, format="PNG")
    rotated = io.BytesIO()  # stored sideways, tagged "rotate 90 clockwise to view": must match the upright original
    Image.open(io.BytesIO(contents[2])).transpose(Image.Transpose.ROTATE_90).save(
        rotated, format="JPEG", quality=95, exif=camera_exif(6))
    sample = contents[:16] + [png.getvalue(), rotated.getvalue(), contents[1][:2000]]
    spec = FeatureSpec("resnet50", "random:0", 224)
    gpu_extractor = FeatureExtractor(spec, device="cuda:0")
    gpu_vectors, gpu_errors = gpu_extractor.features(sample)
    cpu_vectors, cpu_errors = FeatureExtractor(spec, device="cpu").features(sample)
    upright, turned = gpu_vectors[2], gpu_vectors[17]
    cosines = [
        float(np.dot(g, c) / (np.linalg.norm(g) * np.linalg.norm(c)))
        for g, c in zip(gpu_vectors, cpu_vectors, strict=True) if g is not None and c is not None
    ]
    return {
        "gpu_errors": gpu_errors[-3:],
        "cpu_errors": cpu_errors[-3:],
        "png_fallback_decoded_on_gpu_path": gpu_vectors[16] is not None,
        "exif_rotated_jpeg_decoded_by_pillow": not gpu_extractor.decodes_on_gpu(sample[17]),
        "cosine_exif_rotated_vs_upright_on_gpu_path": float(
            np.dot(upright, turned) / (np.linalg.norm(upright) * np.linalg.norm(turned))),
        "min_cosine_gpu_bf16_vs_cpu_fp32": min(cosines),
        "compared_images": len(cosines),
    }


def main() -> None:
    import torch
    import torchvision

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--distinct", type=int, default=1024, help="distinct JPEGs, repeated up to --images")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--backbones", default="resnet50,resnet18")
    parser.add_argument("--decode-workers", default="1,2,4,8", help="decode threads (and streams) to compare")
    parser.add_argument("--exif", action="store_true", help="every JPEG carries an upright camera EXIF block")
    parser.add_argument("--json", help="write the results here too, after each backbone")
    args = parser.parse_args()

    with Pool() as pool:
        distinct = pool.map(partial(synthetic_jpeg, exif=args.exif), range(args.distinct))
    contents = [distinct[i % len(distinct)] for i in range(args.images)]
    batches = arrow_batches(contents, args.batch_size)
    report = {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "images": args.images,
        "camera_exif": args.exif,
        "batch_size": args.batch_size,
        "mean_jpeg_kib": sum(map(len, distinct)) / len(distinct) / 1024,
        "results": [],
    }
    print(json.dumps({key: value for key, value in report.items() if key != "results"}), flush=True)
    for backbone in args.backbones.split(","):
        try:
            workers = [int(value) for value in args.decode_workers.split(",")]
            result = bench_backbone(backbone, batches, args.batch_size, args.images, workers)
        except Exception as error:  # noqa: BLE001 - one backbone's failure must not lose the others' figures
            result = {"backbone": backbone, "error": f"{type(error).__name__}: {error}"}
        # The backbone's extractor went with bench_backbone's frame: hand its cached GPU memory back before the next.
        torch.cuda.empty_cache()
        report["results"].append(result)
        print(json.dumps(result), flush=True)
        write_json(args.json, report)
    try:
        report["checks"] = check_paths(distinct)
    except Exception as error:  # noqa: BLE001
        report["checks"] = {"error": f"{type(error).__name__}: {error}"}
    print(json.dumps(report["checks"]), flush=True)
    print("\n| backbone | JPEG bytes -> features (img/s) | decode + preprocess (img/s) | model only, bf16 (img/s) |")
    print("|---|---|---|---|")
    for result in report["results"]:
        if "error" not in result:
            print(f"| {result['backbone']} | {result['end_to_end_images_per_s']:,.0f} | "
                  f"{result['decode_preprocess_images_per_s']:,.0f} | {result['model_only_images_per_s']:,.0f} |")
    write_json(args.json, report)


def write_json(path: str | None, report: dict) -> None:
    if path:
        with open(path, "w") as handle:
            json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
