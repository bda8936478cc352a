"""Image validation: cheap header checks first, then a full decode, judged by content rather than file extension."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "MPO"})


@dataclass(frozen=True)
class ValidationBounds:
    min_side: int = 16
    max_side: int = 8192
    # Pillow's decompression-bomb guard, applied here as a rejection rather than a crash.
    max_pixels: int = 40_000_000


@dataclass(frozen=True)
class ImageCheck:
    """Outcome of validating one object: format and size when accepted, a reason when rejected."""

    sha256: str
    format: str | None = None
    width: int | None = None
    height: int | None = None
    mode: str | None = None  # Pillow's pixel mode: RGB, L, P, RGBA, CMYK, I;16 ...
    reason: str | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is None


def validate_image(content: bytes, bounds: ValidationBounds = ValidationBounds()) -> ImageCheck:
    from PIL import Image

    sha256 = hashlib.sha256(content).hexdigest()
    # Pillow's process-wide guard follows the configured bound (every fetch thread of a job shares the same bounds),
    # set above it so that the explicit check below gives the message for sizes in between.
    Image.MAX_IMAGE_PIXELS = bounds.max_pixels * 2
    if not content:
        return ImageCheck(sha256, reason="empty: zero bytes")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(content)) as image:
                image_format, (width, height), mode = image.format, image.size, image.mode
                if image_format not in ACCEPTED_FORMATS:
                    return ImageCheck(sha256, reason=f"unsupported format: {image_format}")
                if width * height > bounds.max_pixels:
                    return ImageCheck(
                        sha256, reason=f"decompression bomb: {width}x{height} exceeds {bounds.max_pixels} pixels")
                if min(width, height) < bounds.min_side:
                    return ImageCheck(sha256, reason=f"too small: {width}x{height} below {bounds.min_side} pixels")
                if max(width, height) > bounds.max_side:
                    return ImageCheck(sha256, reason=f"too large: {width}x{height} above {bounds.max_side} pixels")
                image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            return ImageCheck(sha256, reason=f"decompression bomb: {error}")
        except Image.UnidentifiedImageError:
            return ImageCheck(sha256, reason="not an image: content is no known image format")
        except OSError as error:
            kind = "truncated" if "truncated" in str(error) else "corrupt"
            return ImageCheck(sha256, reason=f"{kind}: {error}")
        except (ValueError, SyntaxError, IndexError) as error:  # Pillow's plugins raise these on malformed headers
            return ImageCheck(sha256, reason=f"corrupt: {error}")
    image_format = "JPEG" if image_format == "MPO" else image_format  # MPO: a JPEG with extra frames (phone cameras)
    return ImageCheck(sha256, format=image_format, width=width, height=height, mode=mode)
