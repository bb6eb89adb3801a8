"""A venue's ``[brand]`` on the real page in Chromium: title, logo and colours applied, no error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import ARTIFACTS, open_page
from tests.venue import museum
from voicekiosk.brand.contrast import rgb

pytestmark = pytest.mark.browser


def rgb_of(colour: str) -> str:
    """``#rrggbb`` as getComputedStyle writes it."""
    return "rgb({}, {}, {})".format(*rgb(colour))


async def test_the_configured_title_logo_and_colours_are_applied(chromium, serve_app, tmp_path: Path):
    brand = museum(tmp_path, font_scale=1.25)
    server = await serve_app(https=True, brand=brand)
    context = await chromium.new_context(viewport={"width": 390, "height": 844})
    page, watch = await open_page(context, str(server.make_url("/")))
    await page.wait_for_function("document.getElementById('brand-logo').complete")

    assert await page.title() == "City Museum"
    assert await page.text_content("#brand-title") == "City Museum"
    assert await page.evaluate("document.getElementById('brand-logo').naturalWidth") == 120
    styles = await page.evaluate(
        """() => {
          const css = (sel, prop) => getComputedStyle(document.querySelector(sel))[prop];
          return {start: css('#start', 'backgroundColor'), label: css('#start', 'color'),
                  mute: css('#mute', 'backgroundColor'), muteLabel: css('#mute', 'color'),
                  title: css('#brand-title', 'color'), body: css('body', 'backgroundColor'),
                  text: css('body', 'color'), root: parseFloat(css('html', 'fontSize'))};
        }"""
    )
    assert styles["start"] == styles["title"] == "rgb(29, 78, 216)"  # the accent
    assert styles["label"] == "rgb(255, 255, 255)"  # white reads on it
    assert styles["body"] == "rgb(248, 250, 252)" and styles["text"] == "rgb(15, 23, 42)"
    props = brand.palette()  # Mute: a step from the venue's background towards its text, not the page's grey
    assert styles["mute"] == rgb_of(props["--control"]) != "rgb(38, 48, 58)"
    assert styles["muteLabel"] == rgb_of(props["--on-control"]) == styles["text"]
    assert styles["root"] == pytest.approx(1.25 * (0.012 * 390 + 12), abs=0.1)  # style.css's clamp(), scaled

    ARTIFACTS.mkdir(exist_ok=True)
    for name, size in (("phone", {"width": 390, "height": 844}), ("kiosk", {"width": 1280, "height": 800})):
        await page.set_viewport_size(size)
        await page.screenshot(path=ARTIFACTS / f"brand-{name}.png")
        overflow = "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
        assert await page.evaluate(overflow) == [size["width"], size["height"]], f"the {name} layout overflows"
    assert watch.errors == []
    assert watch.foreign_urls() == []
    await context.close()
