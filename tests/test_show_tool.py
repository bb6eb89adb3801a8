"""``show``'s images and QR codes: only image files inside the knowledge folder, checked by name and
by content, size-capped; links only as http(s) QR codes made here. Real files, real symlinks."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.helpers import png
from voicekiosk.tools.base import ToolError
from voicekiosk.tools.show import MAX_IMAGE, ShowTool, qr_code


@pytest.fixture
def tool(tmp_path: Path) -> ShowTool:
    folder = tmp_path / "knowledge"
    (folder / "maps").mkdir(parents=True)
    (folder / "map.png").write_bytes(png(4, 3))
    (folder / "maps" / "floor 2.png").write_bytes(png(2, 2))
    (folder / "notes.txt").write_text("Opening hours: 9-17")
    (folder / "fake.png").write_text("not an image")
    (folder / ".hidden.png").write_bytes(png(1, 1))
    (folder / "huge.png").write_bytes(png(1, 1) + b"\0" * MAX_IMAGE)
    (tmp_path / "secret.png").write_bytes(png(1, 1))  # beside the folder, never to be shown
    (folder / "escape.png").symlink_to(tmp_path / "secret.png")
    (folder / "linked").symlink_to(tmp_path)
    return ShowTool(folder)


def test_an_image_inside_the_folder_is_shown_as_a_data_uri(tool: ShowTool) -> None:
    uri = tool.image("map.png")
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == png(4, 3)
    assert tool.image("maps/floor 2.png").startswith("data:image/png;base64,")


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("../secret.png", "is not an image in the venue's folder"),
        ("maps/../../secret.png", "is not an image in the venue's folder"),
        ("escape.png", "is not an image in the venue's folder"),  # a symlink out
        ("linked/secret.png", "is not an image in the venue's folder"),  # through a symlinked folder
        ("/etc/passwd", "is not an image in the venue's folder"),
        ("maps\\..\\..\\secret.png", "is not an image in the venue's folder"),
        (".hidden.png", "is not an image in the venue's folder"),
        ("notes.txt", "is not an image in the venue's folder"),
        ("fake.png", "is not a png image"),  # the name says PNG, the bytes do not
        ("huge.png", "is too large to show"),
        ("", "is not an image in the venue's folder"),
    ],
)
def test_anything_else_is_refused_with_a_short_reason(tool: ShowTool, name: str, says: str) -> None:
    with pytest.raises(ToolError, match=re.escape(says)) as refused:
        tool.image(name)
    assert "secret" not in str(refused.value).replace(repr(name[:80]), "")  # nothing from outside


def test_a_missing_image_lists_the_folder_s_images_and_nothing_outside_it(tool: ShowTool) -> None:
    with pytest.raises(ToolError) as refused:
        tool.image("plan.png")
    message = str(refused.value)
    assert message.startswith("There is no image called 'plan.png'.")
    assert "Images there: " in message and "map.png" in message and "maps/floor 2.png" in message
    for outside in ("secret", "escape", "hidden", "notes.txt", str(tool.folder)):
        assert outside not in message


def test_no_folder_no_images(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="no folder of images"):
        ShowTool(None).image("map.png")
    with pytest.raises(ToolError, match="The folder has no images"):
        ShowTool(tmp_path).image("map.png")


def test_a_link_becomes_an_svg_qr_code_made_here() -> None:
    uri = qr_code("https://example.org/tours?from=kiosk")
    assert uri.startswith("data:image/svg+xml;charset=utf-8,")
    svg = unquote(uri.split(",", 1)[1])
    assert svg.startswith("<svg") and "<path" in svg and "script" not in svg.lower() and "href" not in svg
    assert qr_code("https://example.org/a") != qr_code("https://example.org/b")


@pytest.mark.parametrize(
    "link", ["javascript:alert(1)", "data:text/html,x", "ftp://example.org/", "https://", "https://a b", "http://x\n"]
)
def test_only_http_links_are_made_into_qr_codes(link: str) -> None:
    with pytest.raises(ToolError, match="must be an http"):
        qr_code(link)


def test_symlinked_folders_are_not_walked_for_the_listing(tool: ShowTool) -> None:
    assert os.path.islink(Path(tool.folder or "", "linked"))
    with pytest.raises(ToolError) as refused:
        tool.image("nothing.png")
    assert "linked/" not in str(refused.value)
