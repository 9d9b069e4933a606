"""Uploaded images are received within a byte limit, decoded within a pixel limit and stored re-encoded."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from django.views.static import serve
from PIL import Image, ImageFile
from rest_framework.test import APIClient

from accounts.tests.factories import OrganizerProfileFactory
from accounts.tests.test_auth import assert_problem
from events.errors import ImageTooLarge
from events.images import SizeLimitedUploadHandler
from events.tests.factories import EventFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def event():
    return EventFactory(organizer=OrganizerProfileFactory())


@pytest.fixture
def owner(event) -> APIClient:
    client = APIClient()
    client.force_authenticate(event.organizer.user)
    return client


def encoded(image_format: str, size=(16, 16), mode="RGB", **save) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, "red").save(buffer, format=image_format, **save)
    return buffer.getvalue()


def upload(owner, event, name: str, content: bytes):
    file = SimpleUploadedFile(name, content, content_type="application/octet-stream")
    return owner.post(f"/api/v1/events/{event.pk}/image", {"image": file}, format="multipart")


@pytest.mark.parametrize(
    ("image_format", "client_name", "extension", "content_type"),
    [
        ("GIF", "x.pdf", ".gif", "image/gif"),
        ("PNG", "poster.jpg", ".png", "image/png"),
        ("JPEG", "photo.html", ".jpg", "image/jpeg"),
        ("WEBP", "noext", ".webp", "image/webp"),
    ],
)
def test_stored_under_the_detected_format_never_the_clients_extension(
    owner, event, media, image_format, client_name, extension, content_type
):
    r = upload(owner, event, client_name, encoded(image_format))
    assert r.status_code == 200, r.content
    event.refresh_from_db()
    assert event.image.name.endswith(extension)
    assert r.json()["image_url"].endswith(event.image.name)
    # served (SERVE_MEDIA) with the content type of what it is
    served = serve(RequestFactory().get("/"), event.image.name, document_root=media)
    assert served["Content-Type"] == content_type
    with Image.open(media / event.image.name) as stored:
        assert stored.format == image_format


def test_a_cameras_multi_picture_jpeg_is_stored_as_its_first_picture(owner, event, media):
    """Pillow opens an MPO (stereo or depth photo) as format "MPO", not "JPEG"; it was a 500."""
    stereo = encoded("MPO", size=(24, 12), save_all=True, append_images=[Image.new("RGB", (24, 12), "blue")])
    r = upload(owner, event, "stereo.jpg", stereo)
    assert r.status_code == 200, r.content
    event.refresh_from_db()
    assert event.image.name.endswith(".jpg")
    with Image.open(media / event.image.name) as stored:
        assert (stored.format, stored.size, getattr(stored, "n_frames", 1)) == ("JPEG", (24, 12), 1)
        assert stored.getpixel((0, 0))[0] > 200  # the first picture (red), not the second


def test_metadata_and_trailing_bytes_are_not_kept(owner, event, media):
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"  # Make
    exif[0x8825] = {2: (52.0, 31.0, 12.0)}  # GPSInfo: a latitude
    photo = encoded("JPEG", size=(32, 16), exif=exif) + b"<script>alert(1)</script>"
    assert upload(owner, event, "me.jpg", photo).status_code == 200
    event.refresh_from_db()
    stored = (media / event.image.name).read_bytes()
    assert b"CameraMaker" not in stored
    assert b"<script>" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert (image.format, image.size) == ("JPEG", (32, 16))
        assert not image.getexif()


def test_exif_orientation_is_applied_before_it_is_dropped(owner, event, media):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    assert upload(owner, event, "portrait.jpg", encoded("JPEG", size=(40, 20), exif=exif)).status_code == 200
    event.refresh_from_db()
    with Image.open(media / event.image.name) as image:
        assert image.size == (20, 40)


def test_a_tiny_file_claiming_too_many_pixels_is_refused_before_decoding(owner, event, media):
    # 36 megapixels in a few KB: over our 25 MP, under Pillow's own bomb guard (~89 MP), so only
    # EVENT_IMAGE_MAX_PIXELS can refuse it
    bomb = encoded("PNG", size=(6_000, 6_000), mode="1")
    assert len(bomb) < 64 * 1024
    body = assert_problem(upload(owner, event, "bomb.png", bomb), 400, "image_too_large")
    assert body["max_pixels"] == 25_000_000
    assert "image" in body["errors"]
    event.refresh_from_db()
    assert not event.image
    assert list(media.rglob("*.*")) == []


def test_the_pixel_limit_counts_every_frame_of_an_animation(owner, event, media, settings):
    settings.EVENT_IMAGE_MAX_PIXELS = 100 * 100 * 5
    frames = [Image.new("RGB", (100, 100), (25 * i, 0, 255 - 25 * i)) for i in range(10)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    assert_problem(upload(owner, event, "anim.gif", buffer.getvalue()), 400, "image_too_large")
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:4], duration=50)
    assert upload(owner, event, "anim.gif", buffer.getvalue()).status_code == 200
    event.refresh_from_db()
    with Image.open(media / event.image.name) as image:
        assert image.n_frames == 4


def test_a_body_declared_over_the_limit_is_refused_before_it_is_read(owner, event, media, settings):
    settings.EVENT_IMAGE_MAX_BYTES = 10_000
    body = assert_problem(upload(owner, event, "big.png", b"\0" * 200_000), 400, "file_too_large")
    assert body["max_bytes"] == 10_000


def test_the_size_limit_is_counted_while_receiving():
    """A body without a usable length (chunked) is stopped by the handler at the limit, not after it."""
    handler = SizeLimitedUploadHandler(limit=1000, raises=True)
    handler.new_file("image", "x.png", "image/png", None)
    assert handler.receive_data_chunk(b"x" * 600, 0) == b"x" * 600
    with pytest.raises(ImageTooLarge) as raised:
        handler.receive_data_chunk(b"x" * 600, 600)
    assert raised.value.code == "file_too_large"


def test_an_upload_over_the_limit_within_the_overhead_is_stopped_by_the_handler(owner, event, media, settings):
    settings.EVENT_IMAGE_MAX_BYTES = 100_000
    content = encoded("PNG", size=(8, 8)) + b"\0" * 130_000  # the declared length passes the quick check
    assert_problem(upload(owner, event, "big.png", content), 400, "file_too_large")
    assert list(media.rglob("*.*")) == []


@pytest.mark.parametrize("content", [b"", b"GIF89a", b"\x89PNG\r\n\x1a\n" + b"\0" * 50, b"<svg></svg>"])
def test_truncated_and_non_raster_files_are_refused(owner, event, media, content):
    assert_problem(upload(owner, event, "x.png", content), 400, "invalid")


def _gif_frame(size: int) -> bytes:
    """One image descriptor with its colour table and pixel data, cut out of a GIF Pillow wrote."""
    buffer = io.BytesIO()
    Image.new("P", (size, size), 0).save(buffer, format="GIF")
    data = buffer.getvalue()
    packed = data[10]
    table = data[13 : 13 + 3 * 2 ** ((packed & 7) + 1)]
    index = 13 + len(table)
    while data[index] == 0x21:  # extensions
        index += 2
        while data[index]:
            index += data[index] + 1
        index += 1
    descriptor = bytearray(data[index : index + 10])
    descriptor[9] = 0x80 | (packed & 7)  # a local colour table
    end = index + 11
    while data[end]:
        end += data[end] + 1
    return bytes(descriptor) + table + data[index + 10 : end + 1]


def test_frames_larger_than_the_image_are_refused_before_they_are_decoded(owner, event, media, monkeypatch):
    """A 1 x 1 GIF whose later frames are 4000 x 4000: the size at the door is 1 pixel per frame."""
    control = b"\x21\xf9\x04\x00\x0a\x00\x00\x00"
    bomb = (
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00"
        + b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
        + control
        + _gif_frame(1)
        + b"".join(control + _gif_frame(4000) for _ in range(5))
        + b";"
    )
    with Image.open(io.BytesIO(bomb)) as image:
        assert (image.size, image.n_frames) == ((1, 1), 6)  # what a naive check sees
    decoded = []  # the size of every frame Pillow decodes
    real_load = ImageFile.ImageFile.load

    def load(self):
        decoded.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    assert_problem(upload(owner, event, "tiny.gif", bomb), 400, "image_too_large")
    assert decoded  # the first (1 x 1) frame was decoded on the way to the second...
    assert max(w * h for w, h in decoded) == 1  # ...and no 4000 x 4000 one: refused from its header
    assert list(media.rglob("*.*")) == []


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "GIF"])
def test_comments_and_colour_profiles_are_not_kept(owner, event, media, image_format):
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    mode = "P" if image_format == "GIF" else "RGB"
    extra = {"comment": b"<script>alert(1)</script>"}
    if image_format == "PNG":  # PNG keeps text in its own chunks
        from PIL.PngImagePlugin import PngInfo

        text = PngInfo()
        text.add_text("Comment", "<script>alert(1)</script>")
        extra = {"pnginfo": text}
    if image_format != "GIF":
        extra["icc_profile"] = profile
    content = encoded(image_format, mode=mode, **extra)
    assert b"<script>" in content
    assert upload(owner, event, "x", content).status_code == 200
    event.refresh_from_db()
    stored = (media / event.image.name).read_bytes()
    assert b"<script>" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert "icc_profile" not in image.info
        assert "comment" not in image.info
        assert "Comment" not in image.info
