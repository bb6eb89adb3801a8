"""``[brand]``: WCAG contrast maths, every config error as one line, and the server serving the
venue's look (logo from memory with its type, the CSS variables, the CSP still strict)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from voicekiosk.brand.config import MAX_LOGO_BYTES, Brand, parse_brand
from voicekiosk.brand.contrast import mix, ratio, readable_on
from voicekiosk.cli import cli
from voicekiosk.errors import ConfigError
from voicekiosk.settings import load_settings

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="40" height="20" fill="#c00"/></svg>'


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("#ffffff", "#000000", 21.0),  # the maximum
        ("#777777", "#ffffff", 4.48),  # the grey famously just short of AA
        ("#767676", "#ffffff", 4.54),  # ... and the one that passes
        ("#0000ff", "#ffffff", 8.59),
        ("#ff0000", "#ffffff", 4.00),
        ("#123456", "#123456", 1.0),
    ],
)
def test_contrast_ratios_match_known_wcag_values(a: str, b: str, expected: float) -> None:
    assert ratio(a, b) == pytest.approx(expected, abs=0.005)
    assert ratio(b, a) == ratio(a, b)


def test_mix_and_the_label_colour_on_an_accent() -> None:
    assert mix("#000000", "#ffffff", 0.5) == "#808080"
    assert readable_on("#ffff00") == "#000000" and readable_on("#003366") == "#ffffff"
    # Black or white always reads on any accent: the worst case is still AA.
    assert min(ratio(readable_on(f"#{v:02x}{v:02x}{v:02x}"), f"#{v:02x}{v:02x}{v:02x}") for v in range(256)) >= 4.5


def test_a_light_brand_derives_a_readable_palette() -> None:
    brand = parse_brand({"background": "#FFFFFF", "text": "#111111", "accent": "#005a9c"}, Path("x.toml"))
    props = brand.palette()
    assert props["--bg"] == "#ffffff" and props["--accent"] == "#005a9c" and props["--on-accent"] == "#ffffff"
    for name in ("--text", "--muted"):  # the text colours read on both grounds
        assert ratio(props[name], props["--bg"]) >= 4.5 and ratio(props[name], props["--panel"]) >= 4.5
    # The page's bright state colours (teal, amber, ...) would vanish on white: darkened to 3:1.
    assert ratio("#2dd4bf", "#ffffff") < 3
    for name in ("--you", "--agent", "--ok", "--bad", "--work"):
        assert ratio(props[name], "#ffffff") >= 3


def _write(tmp_path: Path, name: str, body: bytes) -> str:
    (tmp_path / name).write_bytes(body)
    return name


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"colour": "#fff"}, "[brand] colour: unknown key"),
        ({"accent": "teal"}, "[brand] accent: 'teal' is not a colour"),
        ({"background": "#fff"}, "[brand] background: '#fff' is not a colour"),
        ({"text": 0xFFFFFF}, "[brand] text: 16777215 is not a colour"),
        ({"font_scale": 2.5}, "[brand] font_scale: 2.5 is not a number from 0.8 to 2.0"),
        ({"font_scale": True}, "[brand] font_scale: True is not a number"),
        ({"title": "two\nlines"}, "[brand] title: expected one line"),
        ({"logo": "missing.png"}, "[brand] logo: cannot read"),
        ({"logo": 3}, "[brand] logo: expected a file path"),
        ({"text": "#333333"}, "[brand] text #333333 on background #101418 has contrast 1.46:1; WCAG AA needs 4.5:1"),
        ({"accent": "#1e293b"}, "[brand] accent #1e293b on background #101418 has contrast 1.26:1; WCAG AA needs 3:1"),
        ({"background": "#ffffff", "text": "#eeeeee"}, "text #eeeeee on background #ffffff has contrast 1.16:1"),
    ],
)
def test_each_bad_brand_value_is_one_line(table: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_brand(table, Path("/nonexistent/voicekiosk.toml"))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_logo_too_big_or_not_an_image_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "voicekiosk.toml"
    big = _write(tmp_path, "big.png", PNG + bytes(MAX_LOGO_BYTES))
    with pytest.raises(ConfigError, match=r"\[brand\] logo: .*big.png is over 512 KB"):
        parse_brand({"logo": big}, config)
    fake = _write(tmp_path, "logo.png", b"#!/bin/sh\necho not an image\n")  # the name does not decide
    with pytest.raises(ConfigError, match=r"\[brand\] logo: .*logo.png is not a PNG, JPEG, WebP or SVG image"):
        parse_brand({"logo": fake}, config)
    with pytest.raises(ConfigError, match=r"\[brand\] logo: cannot read"):
        parse_brand({"logo": "."}, config)  # a folder


def test_the_brand_is_read_from_the_config_file_and_shown_by_voicekiosk_config(tmp_path: Path) -> None:
    (tmp_path / "art").mkdir()
    _write(tmp_path / "art", "logo.svg", SVG)
    config = tmp_path / "voicekiosk.toml"
    config.write_text('[brand]\ntitle = "City Museum"\nlogo = "art/logo.svg"\naccent = "#2563eb"\nfont_scale = 1.25\n')
    settings = load_settings(env={}, config_path=config)
    assert isinstance(settings.brand, Brand) and settings.brand.logo is not None
    assert settings.brand.logo.content_type == "image/svg+xml" and settings.brand.logo.body == SVG
    assert settings.sources["brand"] == f"file {config}"
    result = CliRunner().invoke(cli, ["config", "--config", str(config)], env={"OPENAI_API_KEY": ""})
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[1:] for line in result.output.splitlines() if line.strip()}
    assert rows["brand.title"][:3] == ["City", "Museum", "file"]
    assert rows["brand.logo"][:2] == ["logo.svg", "(image/svg+xml,"]
    assert rows["brand.accent"][0] == "#2563eb" and rows["brand.font_scale"][0] == "1.25"


def test_a_low_contrast_brand_stops_start_up_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "voicekiosk.toml"
    config.write_text('[brand]\nbackground = "#ffffff"\ntext = "#aaaaaa"\n')
    result = CliRunner().invoke(cli, ["serve", "--config", str(config)], env={"OPENAI_API_KEY": ""})
    assert result.exit_code == 2
    assert "[brand] text #aaaaaa on background #ffffff has contrast 2.32:1; WCAG AA needs 4.5:1" in result.output


async def test_the_logo_and_stylesheet_are_served_and_the_csp_stays_strict(make_client, tmp_path: Path) -> None:
    _write(tmp_path, "logo.png", PNG)
    table = {
        "title": "City <Museum>",
        "logo": "logo.png",
        "accent": "#2563eb",
        "background": "#0b1020",
        "font_scale": 1.5,
    }
    client = await make_client(brand=parse_brand(table, tmp_path / "voicekiosk.toml"))

    logo = await client.get("/brand/logo")
    assert logo.status == 200 and logo.content_type == "image/png" and await logo.read() == PNG
    assert "sandbox" in logo.headers["Content-Security-Policy"]  # an SVG opened alone runs nothing
    again = await client.get("/brand/logo", headers={"If-None-Match": logo.headers["ETag"]})
    assert again.status == 304

    css = await client.get("/brand/brand.css")
    assert css.status == 200 and css.content_type == "text/css"
    text = await css.text()
    assert "--accent: #2563eb;" in text and "--bg: #0b1020;" in text and "--on-accent: #ffffff;" in text
    assert "--font-scale: 1.5;" in text

    page = await client.get("/")
    html = await page.text()
    assert "<title>City &lt;Museum&gt;</title>" in html  # escaped, like every value
    assert '<link rel="stylesheet" href="/brand/brand.css">' in html and 'src="/brand/logo"' in html
    assert ' style="' not in html and "<style" not in html
    csp = page.headers["Content-Security-Policy"]
    assert "style-src 'self';" in csp and "unsafe-inline" not in csp
    for path in ("/brand/logo/../../voicekiosk.toml", "/brand/voicekiosk.toml", "/brand/logo.png"):
        assert (await client.get(path)).status == 404


async def test_without_a_brand_the_page_is_unchanged(client) -> None:
    html = await (await client.get("/")).text()
    assert "/brand/" not in html and "<title>voicekiosk</title>" in html
    assert (await client.get("/brand/brand.css")).status == 404
