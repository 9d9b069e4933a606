"""Event images: received within a size limit, decoded within a pixel limit, stored re-encoded.

What a client uploads is never stored as it came. The bytes are counted while
they arrive (an upload handler stops at ``EVENT_IMAGE_MAX_BYTES`` instead of
spooling the whole body first); the header is read for format and dimensions
before anything is decoded (``EVENT_IMAGE_MAX_PIXELS``: a 17 KB PNG can claim
12,000 x 12,000 pixels and take gigabytes to decode); then the image is decoded
and written out again by Pillow in the format it really is, under a random
name with that format's extension. Whatever else rode along (metadata with GPS
positions, trailing bytes, a script behind a valid header, a misleading
``.pdf`` name) is gone, and the stored file is served with the content type of
what it is.
"""

from __future__ import annotations

import io
import uuid
import warnings

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from eventflow.api.errors import ApplicationError

from .errors import ImageTooLarge, ImageTooManyPixels

# Pillow format -> stored extension. Web formats only.
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
# An animated poster has no business being longer than this.
MAX_FRAMES = 300


def _not_an_image() -> ApplicationError:
    return ApplicationError(_("Upload a JPEG, PNG, GIF or WebP image."), field="image")


class SizeLimitedUploadHandler(FileUploadHandler):
    """Counts an upload's bytes as they arrive and stops at ``EVENT_IMAGE_MAX_BYTES``.

    First in ``FILE_UPLOAD_HANDLERS``, so every upload is counted, the admin's too
    (its body is parsed by the CSRF check, before any view): there it skips the
    rest of the file and notes the refusal on the request
    (``upload_over_limit``), for the form to report. The API's image endpoint
    installs one that ``raises`` instead, which stops the request with a 400.
    """

    def __init__(self, request=None, *, limit: int | None = None, raises: bool = False) -> None:
        super().__init__(request)
        self.limit = settings.EVENT_IMAGE_MAX_BYTES if limit is None else limit
        self.raises = raises
        self.received = 0

    def new_file(self, *args, **kwargs) -> None:
        self.received = 0
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            if self.raises:
                raise ImageTooLarge(self.limit)
            if self.request is not None:
                self.request.upload_over_limit = self.limit
            raise SkipFile()
        return raw_data  # the next handler stores it

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler builds the file


# Room for the multipart envelope around the file (boundaries, part headers, small fields).
MULTIPART_OVERHEAD = 64 * 1024


def guard_upload(request) -> None:
    """Before the body is read: refuse a declared length over the limit, and count the rest as it arrives."""
    limit = settings.EVENT_IMAGE_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit + MULTIPART_OVERHEAD:
        raise ImageTooLarge(limit)
    request.upload_handlers.insert(0, SizeLimitedUploadHandler(request, limit=limit, raises=True))


def reencode(upload) -> ContentFile:
    """Decode ``upload`` within the limits and return it re-encoded, named by its real format."""
    limit_bytes, limit_pixels = settings.EVENT_IMAGE_MAX_BYTES, settings.EVENT_IMAGE_MAX_PIXELS
    if upload.size is not None and upload.size > limit_bytes:
        raise ImageTooLarge(limit_bytes)
    upload.seek(0)
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb guard (above ~89 MP) warns: make it refuse, like ours.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(upload, formats=tuple(EXTENSIONS)) as image:  # reads the header only
                image_format = image.format
                frames = getattr(image, "n_frames", 1)  # counted from frame headers, nothing decoded
                if image_format == "MPO":
                    # A camera's multi-picture JPEG (stereo, depth): Pillow's JPEG reader opens it as
                    # MPO. A poster is its first picture, stored as a plain JPEG.
                    image_format, frames = "JPEG", 1
                if frames > MAX_FRAMES or image.width * image.height * frames > limit_pixels:
                    raise ImageTooManyPixels(limit_pixels)
                output = io.BytesIO()
                if frames > 1:
                    _save_animation(image, image_format, frames, output, limit_pixels)
                else:
                    _save(image, image_format, output)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ImageTooManyPixels(limit_pixels) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _not_an_image() from exc
    stored = ContentFile(output.getvalue(), name=f"{uuid.uuid4().hex}.{EXTENSIONS[image_format]}")
    stored.reencoded = True  # events.services.event_set_image stores it as it is
    return stored


# What a re-encoded image keeps of the original's metadata: only what its pixels need.
_KEPT_INFO = {"transparency"}


def _pixels_only(image: Image.Image) -> Image.Image:
    """Drop comments, colour profiles, EXIF, XMP and the like: Pillow writes whatever ``info`` holds."""
    image.info = {key: value for key, value in image.info.items() if key in _KEPT_INFO}
    return image


def _save_animation(image: Image.Image, image_format: str, frames: int, output: io.BytesIO, limit: int) -> None:
    """An animated GIF or WebP, frame by frame, each checked before it is decoded.

    The pixel count at the door trusts the logical screen size; a frame may claim to be larger
    (a 1 x 1 GIF whose frames are 8000 x 8000), and Pillow grows the canvas only as it decodes
    the frame. So each frame's extent is read first (seeking to a frame decodes only the one
    before it) and must stay within the screen.
    """
    screen = image.size
    copies, durations = [], []
    for index in range(frames):
        image.seek(index)
        inside = all(
            tile.extents[0] >= 0
            and tile.extents[1] >= 0
            and tile.extents[2] <= screen[0]
            and tile.extents[3] <= screen[1]
            for tile in image.tile
        )
        if image.size != screen or not inside:
            raise ImageTooManyPixels(limit)
        durations.append(int(image.info.get("duration", 100)))
        copies.append(_pixels_only(image.copy()))
    loop = int(image.info.get("loop", 0))
    first, rest = copies[0], copies[1:]
    first.save(output, format=image_format, save_all=True, append_images=rest, duration=durations, loop=loop)


def _save(image: Image.Image, image_format: str, output: io.BytesIO) -> None:
    """Write the decoded pixels only: no EXIF, no comments, no colour profile, nothing appended."""
    upright = _pixels_only(ImageOps.exif_transpose(image))  # the orientation EXIF asked for, then no EXIF
    if image_format == "JPEG":
        if upright.mode not in ("RGB", "L"):
            upright = upright.convert("RGB")
        upright.save(output, format="JPEG", quality=85, optimize=True)
    elif image_format == "PNG":
        upright.save(output, format="PNG", optimize=True)
    elif image_format == "GIF":
        upright.save(output, format="GIF")
    else:
        upright.save(output, format="WEBP", quality=85)
