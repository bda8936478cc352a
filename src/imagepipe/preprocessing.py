"""Image preprocessing before the backbone: an ordered list of Pillow steps, chosen per run.

A list is written as JSON (an Airflow Param) or as a comma string (the job's --preprocessing), e.g.
`exif_transpose,median:3,autocontrast,pad_to_square`. The steps:

    exif_transpose   turn the image upright by its EXIF orientation tag (first, if given; on by default)
    median:SIZE      median filter over SIZE x SIZE pixels, SIZE odd, 3..15 (salt-and-pepper noise)
    gaussian:RADIUS  Gaussian blur of standard deviation RADIUS pixels, 0 < RADIUS <= 10 (sensor noise)
    autocontrast     stretch each channel's histogram to the full 0..255 range
    equalize         equalise each channel's histogram
    pad_to_square    pad with black to a square (last, if given): the backbone then resizes the whole image to
                     its input size instead of resizing the shorter side and cropping the centre

After exif_transpose and before the other steps, every image becomes 8-bit RGB by one rule (`to_rgb`). Pillow is
imported inside functions: a DAG file imports this module for its Param schema.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from imagepipe.errors import InputError

# An encoded image: bytes, or a view of an Arrow buffer without a copy (featurizer.engine.encoded_images).
EncodedImage = bytes | memoryview

DEFAULT_STEPS: tuple[str, ...] = ("exif_transpose",)
PAD_COLOUR = (0, 0, 0)
EXIF_ORIENTATION_TAG = 0x0112
TURNING_ORIENTATIONS = range(2, 9)  # the values ImageOps.exif_transpose acts on
MEDIAN_SIZES = range(3, 16, 2)
MAX_GAUSSIAN_RADIUS = 10.0

# Step name -> the name of its parameter in messages, or None for a step without one.
STEPS: dict[str, str | None] = {
    "exif_transpose": None,
    "median": "SIZE",
    "gaussian": "RADIUS",
    "autocontrast": None,
    "equalize": None,
    "pad_to_square": None,
}
ALLOWED = ", ".join(f"{name}:{parameter}" if parameter else name for name, parameter in STEPS.items())

# One step with its parameter's bounds as a JSON-Schema pattern for one list item, so the trigger form and the job
# refuse a bad step with the same message (imagepipe.params); parse_steps adds the order rules, which one item's
# pattern cannot express. The radius: 10 (10.0, ...), 1 to 9.x, or a fraction above 0.
STEP_PATTERN = (
    r"^(exif_transpose|autocontrast|equalize|pad_to_square"
    rf"|median:({'|'.join(str(size) for size in MEDIAN_SIZES)})"
    r"|gaussian:0*(10(\.0+)?|[1-9](\.[0-9]+)?|\.[0-9]*[1-9][0-9]*))$"
)


def parse_steps(steps: str | Sequence[str]) -> tuple[str, ...]:
    """The canonical steps of a comma string or a list (numbers written one way, so equal lists fingerprint
    equally), or an InputError naming the bad step and what is allowed. An empty string or list means no steps."""
    raw_items = steps.split(",") if isinstance(steps, str) else [str(item) for item in steps]
    items = [item.strip() for item in raw_items]
    if items == [""]:
        items = []
    canonical = tuple(_canonical_step(item) for item in items)
    for position, step in enumerate(canonical):
        if step == "exif_transpose" and position != 0:
            raise InputError("preprocessing step 'exif_transpose' must come first, once: "
                             "it reads the orientation the file was saved with")
        if step == "pad_to_square" and position != len(canonical) - 1:
            raise InputError("preprocessing step 'pad_to_square' must come last, once: "
                             "it frames the image for the backbone")
    return canonical


def _canonical_step(step: str) -> str:
    name, colon, value = step.partition(":")
    if name not in STEPS:
        raise InputError(f"unknown preprocessing step {step!r}; choose from {ALLOWED}")
    parameter = STEPS[name]
    if parameter is None:
        if colon:
            raise InputError(f"preprocessing step {step!r}: {name} takes no parameter")
        return name
    if not value:
        raise InputError(f"preprocessing step {step!r} needs its {parameter}, e.g. {name}:3")
    if name == "median":
        if not value.isdigit() or int(value) not in MEDIAN_SIZES:
            raise InputError(f"preprocessing step {step!r}: SIZE must be an odd whole number from 3 to 15")
        return f"median:{int(value)}"
    try:
        radius = float(value)
    except ValueError:
        radius = float("nan")
    if not 0 < radius <= MAX_GAUSSIAN_RADIUS:  # also false for nan and inf
        raise InputError(f"preprocessing step {step!r}: "
                         f"RADIUS must be a number above 0 and at most {MAX_GAUSSIAN_RADIUS:g}")
    return f"gaussian:{radius:g}"


def keeps_whole_image(steps: Sequence[str]) -> bool:
    """Whether the backbone must resize the whole (squared) image to its input instead of cropping its centre."""
    return "pad_to_square" in steps


def gpu_can_apply(steps: Sequence[str]) -> bool:
    """Whether the GPU path (nvJPEG, then the backbone's transforms on tensors) can do these steps itself. It can
    only take exif_transpose, and only for images whose orientation is already upright (see `is_upright`)."""
    return set(steps) <= {"exif_transpose"}


def is_upright(content: EncodedImage) -> bool:
    """True when the encoded image needs no EXIF rotation (no tag, or a value exif_transpose leaves alone). Reads only
    the file's header, not its pixels: a JPEG's own EXIF segment directly (jpeg_exif_orientation), anything else or
    an unusual header through Pillow."""
    orientation = jpeg_exif_orientation(content)
    if orientation is None:
        import io

        from PIL import Image

        with Image.open(io.BytesIO(content)) as image:
            orientation = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
    return orientation not in TURNING_ORIENTATIONS


def jpeg_exif_orientation(content: EncodedImage) -> int | None:
    """The EXIF orientation of a JPEG, 1 when it has none, or None when its header is not laid out as the JPEG and
    EXIF standards put it (the caller then asks Pillow). Why not Pillow: opening an image parses every marker in
    Python, which cost a GPU run a quarter of its throughput (bench/RESULTS.md); this
    walks the segments before the image data and reads one TIFF entry.

    Like Pillow, it takes the first APP1 segment that starts with the EXIF header, and IFD0's orientation entry."""
    if content[:2] != b"\xff\xd8":
        return None
    position = 2
    while position + 4 <= len(content):
        if content[position] != 0xFF:
            return None
        marker = content[position + 1]
        if not 0xC0 <= marker <= 0xFE or 0xD0 <= marker <= 0xD9:  # fill bytes or a marker without a length
            return None
        if marker == 0xDA:  # start of scan: every header segment has been seen
            return 1
        (length,) = struct.unpack_from(">H", content, position + 2)
        if length < 2:
            return None
        segment = content[position + 4 : position + 2 + length]
        if marker == 0xE1 and segment[:6] == b"Exif\0\0":
            return _tiff_orientation(segment[6:])
        position += 2 + length
    return None


def _tiff_orientation(tiff: bytes) -> int | None:
    """The orientation entry of a TIFF header's first IFD, 1 when it has none, None when the header is malformed."""
    byte_order = {b"II*\0": "<", b"MM\0*": ">"}.get(bytes(tiff[:4]))
    if byte_order is None or len(tiff) < 10:
        return None
    (ifd,) = struct.unpack_from(byte_order + "I", tiff, 4)
    if ifd + 2 > len(tiff):
        return None
    (entries,) = struct.unpack_from(byte_order + "H", tiff, ifd)
    for entry in range(ifd + 2, ifd + 2 + 12 * entries, 12):
        if entry + 12 > len(tiff):
            return None
        tag, kind, count, value = struct.unpack_from(byte_order + "HHIH", tiff, entry)
        if tag == EXIF_ORIENTATION_TAG:
            return value if (kind, count) == (3, 1) else None  # one SHORT, stored at the start of the value field
    return 1


def to_rgb(image):
    """8-bit RGB by one rule: transparency (RGBA, LA, PA, a palette's or grayscale's transparent colour) is
    composited on white; 16- and 32-bit integer grayscale is scaled from 0..65535 to 0..255 (not clipped, which
    would turn everything above 255 white); every other mode (L, P, CMYK, YCbCr, ...) by Pillow's convert."""
    from PIL import Image

    if image.mode.startswith("I"):  # I;16, I;16B, I;16L from 16-bit PNG and TIFF, I from 32-bit TIFF
        return image.convert("I").point(lambda value: value * (1 / 257)).convert("L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return image.convert("RGB")


def preprocess(image, steps: Sequence[str]):
    """The decoded PIL image after canonical `steps` (see parse_steps): upright if asked, RGB, then each step."""
    from PIL import ImageFilter, ImageOps

    upright = bool(steps) and steps[0] == "exif_transpose"
    if upright:
        # On the image as decoded, before any conversion: the tag describes the pixels as the file stores them.
        image = ImageOps.exif_transpose(image)
    image = to_rgb(image)
    for step in steps[1:] if upright else steps:
        name, _, value = step.partition(":")
        if name == "median":
            image = image.filter(ImageFilter.MedianFilter(int(value)))
        elif name == "gaussian":
            image = image.filter(ImageFilter.GaussianBlur(float(value)))
        elif name == "autocontrast":
            image = ImageOps.autocontrast(image)
        elif name == "equalize":
            image = ImageOps.equalize(image)
        else:  # pad_to_square, the only other step parse_steps lets past exif_transpose
            side = max(image.size)
            image = ImageOps.pad(image, (side, side), color=PAD_COLOUR)
    return image
