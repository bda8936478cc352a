"""A small labelled image set in the layout users have: s3://<bucket>/<prefix>/<label>/<name>.jpg|png.

Four classes of drawn outdoor scenes. Each image varies in size, horizon, colours, object count and placement, blur,
mirroring and noise, so telling the classes apart is a real (if small) learning problem; their colours and textures
differ enough that CNN features, even from a seeded random backbone, separate them.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import dataclass

CLASSES = ("beach", "forest", "night_sky", "snowfield")


@dataclass(frozen=True)
class SampleImage:
    label: str
    name: str
    content: bytes


def _jitter(rng: random.Random, colour: tuple[int, int, int], spread: int) -> tuple[int, int, int]:
    return tuple(max(0, min(255, channel + rng.randint(-spread, spread))) for channel in colour)


def _gradient(draw, width: int, height: int, top: tuple, bottom: tuple, y0: int = 0, y1: int | None = None) -> None:
    y1 = height if y1 is None else y1
    for y in range(y0, y1):
        t = (y - y0) / max(1, y1 - y0 - 1)
        draw.line((0, y, width, y), fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))


def draw_image(label: str, rng: random.Random):
    """Draw one image of class `label` as a PIL image."""
    from PIL import Image, ImageDraw, ImageFilter

    width, height = rng.randint(120, 260), rng.randint(120, 260)
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    horizon = round(height * rng.uniform(0.35, 0.7))
    if label == "beach":
        _gradient(draw, width, height, _jitter(rng, (110, 170, 235), 30), _jitter(rng, (200, 225, 245), 20), 0, horizon)
        sea = round(horizon + (height - horizon) * rng.uniform(0.3, 0.6))
        _gradient(draw, width, height, _jitter(rng, (30, 90, 160), 30), _jitter(rng, (60, 140, 180), 30), horizon, sea)
        _gradient(draw, width, height, _jitter(rng, (225, 200, 150), 25), _jitter(rng, (200, 170, 120), 25),
                  sea, height)
        for _ in range(rng.randint(2, 6)):
            y = rng.randint(horizon, sea)
            draw.line((0, y, width, y + rng.randint(-4, 4)), fill=_jitter(rng, (235, 240, 250), 15),
                      width=rng.randint(1, 3))
    elif label == "forest":
        _gradient(draw, width, height, _jitter(rng, (150, 190, 220), 40), _jitter(rng, (200, 215, 200), 30), 0, horizon)
        _gradient(draw, width, height, _jitter(rng, (40, 90, 30), 25), _jitter(rng, (60, 50, 30), 20), horizon, height)
        for _ in range(rng.randint(6, 18)):
            x, base = rng.randint(0, width), rng.randint(horizon, height)
            tree_height, half_width = rng.randint(height // 4, height // 2), rng.randint(8, 24)
            draw.rectangle((x - 2, base - tree_height // 4, x + 2, base), fill=_jitter(rng, (80, 55, 30), 20))
            draw.polygon(
                [(x, base - tree_height), (x - half_width, base - tree_height // 4),
                 (x + half_width, base - tree_height // 4)],
                fill=_jitter(rng, (30, 110, 40), 30),
            )
    elif label == "night_sky":
        _gradient(draw, width, height, _jitter(rng, (5, 10, 35), 10), _jitter(rng, (30, 40, 80), 20), 0, horizon)
        draw.rectangle((0, horizon, width, height), fill=_jitter(rng, (15, 15, 20), 10))
        for _ in range(rng.randint(30, 120)):
            x, y, r = rng.randint(0, width), rng.randint(0, horizon), rng.choice((0, 0, 1))
            draw.ellipse((x - r, y - r, x + r, y + r), fill=_jitter(rng, (240, 240, 220), 15))
        if rng.random() < 0.6:
            x, y, r = rng.randint(20, width - 20), rng.randint(10, max(11, horizon - 10)), rng.randint(6, 16)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=_jitter(rng, (240, 235, 200), 10))
    elif label == "snowfield":
        _gradient(draw, width, height, _jitter(rng, (170, 185, 205), 25), _jitter(rng, (225, 230, 240), 15),
                  0, horizon)
        _gradient(draw, width, height, _jitter(rng, (240, 245, 250), 10), _jitter(rng, (200, 210, 225), 15),
                  horizon, height)
        for _ in range(rng.randint(0, 4)):
            x = rng.randint(0, width)
            peak = rng.randint(horizon // 3, horizon)
            spread = rng.randint(30, 90)
            draw.polygon([(x - spread, horizon), (x, peak), (x + spread, horizon)],
                         fill=_jitter(rng, (150, 160, 175), 20))
        for _ in range(rng.randint(20, 80)):
            x, y = rng.randint(0, width), rng.randint(0, height)
            draw.point((x, y), fill=(255, 255, 255))
    else:
        raise ValueError(f"unknown sample class {label!r}; choose one of {', '.join(CLASSES)}")
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    # Noise from the seeded generator (Pillow's effect_noise uses the C library's global one).
    noise = Image.frombytes("L", (width, height), rng.randbytes(width * height)).convert("RGB")
    return Image.blend(image, noise, rng.uniform(0.03, 0.15))


def generate(per_class: int = 100, seed: int = 0, classes: tuple[str, ...] = CLASSES) -> Iterator[SampleImage]:
    """Yield `per_class` encoded images of every class, JPEG or PNG, reproducibly for a given seed."""
    rng = random.Random(seed)
    for label in classes:
        for index in range(per_class):
            image = draw_image(label, rng)
            buffer = io.BytesIO()
            if rng.random() < 0.75:
                image.save(buffer, format="JPEG", quality=rng.randint(70, 95))
                extension = "jpg"
            else:
                image.save(buffer, format="PNG")
                extension = "png"
            yield SampleImage(label=label, name=f"{label}_{index:04d}.{extension}", content=buffer.getvalue())


def upload(s3_client, bucket: str, prefix: str, images: Iterator[SampleImage]) -> int:
    """Put every image at <prefix>/<label>/<name>, creating the bucket if needed; return how many were written."""
    existing = {b["Name"] for b in s3_client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3_client.create_bucket(Bucket=bucket)
    prefix = prefix.strip("/")
    count = 0
    for image in images:
        key = f"{prefix}/{image.label}/{image.name}" if prefix else f"{image.label}/{image.name}"
        content_type = "image/jpeg" if image.name.endswith(".jpg") else "image/png"
        s3_client.put_object(Bucket=bucket, Key=key, Body=image.content, ContentType=content_type)
        count += 1
    return count
