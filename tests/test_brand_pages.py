"""The venue's look beyond the talking page: the "access token needed" page and the setup site carry
its title, logo and colours (the CSP unchanged), and the buttons that are not the accent (Mute,
Retry) take their colours from it, with a label that reads (WCAG AA, checked at start)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.browser import ARTIFACTS, open_page
from tests.venue import museum
from voicekiosk.brand.config import Brand, check_contrast, pairings, parse_brand
from voicekiosk.brand.contrast import ratio
from voicekiosk.settings import Settings
from voicekiosk.tls.context import prepare
from voicekiosk.web.setup_site import SETUP_CSP, create_setup_app

# A request relayed by a proxy on this machine counts as from the network: it needs the token.
RELAYED = {"X-Forwarded-For": "192.0.2.7"}


@pytest.mark.parametrize(
    "colours",
    [
        {"background": "#f8fafc", "text": "#0f172a"},
        {"background": "#000000", "text": "#ffffff"},
        {"background": "#1e3a8a", "text": "#ffffff", "accent": "#f59e0b"},
        {"background": "#fef3c7", "text": "#3f2d00"},
        {"text": "#ffffff"},
    ],
)
def test_the_other_buttons_and_mute_pressed_read_on_any_brand(colours: dict[str, str]) -> None:
    props = parse_brand(colours, Path("x.toml")).palette()
    assert ratio(props["--on-control"], props["--control"]) >= 4.5
    assert ratio(props["--on-pressed"], props["--pressed"]) >= 4.5
    assert props["--control"] != props["--bg"]  # a button, not a hole in the page


def test_the_contrast_check_covers_the_button_labels() -> None:
    brand = Brand(background="#ffffff", text="#111111")
    props = brand.palette()
    checked = {(fg, ground) for _, fg, _, ground, least in pairings(brand) if least == 4.5}
    assert (props["--on-control"], props["--control"]) in checked
    assert (props["--on-pressed"], props["--pressed"]) in checked
    check_contrast(brand)


async def test_the_token_needed_page_carries_the_brand_and_the_csp_is_unchanged(make_client, tmp_path: Path) -> None:
    plain = await make_client()
    unbranded = await plain.get("/", headers=RELAYED)
    client = await make_client(brand=museum(tmp_path))
    page = await client.get("/", headers=RELAYED)
    assert page.status == unbranded.status == 401
    html = await page.text()
    assert "<title>City Museum: access token needed</title>" in html
    assert '<link rel="stylesheet" href="/brand/brand.css">' in html and 'src="/brand/logo"' in html
    assert page.headers["Content-Security-Policy"] == unbranded.headers["Content-Security-Policy"]
    # What the page needs comes without the token: the look is no secret, the API still is.
    css = await client.get("/brand/brand.css", headers=RELAYED)
    assert css.status == 200 and "--bg: #f8fafc;" in await css.text()
    assert (await client.get("/brand/logo", headers=RELAYED)).status == 200
    assert (await client.get("/api/config", headers=RELAYED)).status == 401
    assert "/brand/" not in await unbranded.text()


async def test_the_setup_site_carries_the_brand(aiohttp_client, settings: Settings, tmp_path: Path) -> None:
    ca = prepare(settings).ca
    assert ca is not None
    client = await aiohttp_client(create_setup_app(dataclasses.replace(settings, brand=museum(tmp_path)), ca))
    page = await client.get("/")
    html = await page.text()
    assert "<title>City Museum: set up this device</title>" in html and 'src="/brand/logo"' in html
    assert '<link rel="stylesheet" href="/brand/brand.css">' in html
    assert page.headers["Content-Security-Policy"] == SETUP_CSP
    assert (await client.get("/brand/brand.css")).status == 200


@pytest.mark.browser
async def test_the_token_needed_page_shows_the_venue_s_colours_in_chromium(chromium, serve_app, tmp_path: Path):
    server = await serve_app(https=True, brand=museum(tmp_path))
    context = await chromium.new_context(extra_http_headers=RELAYED)
    page, watch = await open_page(context, str(server.make_url("/")), probe=False)
    await page.wait_for_function("document.querySelector('.brand-logo').complete")
    assert await page.title() == "City Museum: access token needed"
    colours = await page.evaluate(
        """() => ({body: getComputedStyle(document.body).backgroundColor, text: getComputedStyle(document.body).color,
                   logo: document.querySelector('.brand-logo').naturalWidth})"""
    )
    assert colours == {"body": "rgb(248, 250, 252)", "text": "rgb(15, 23, 42)", "logo": 120}
    assert [e for e in watch.errors if "401" not in e] == []  # the page itself is the 401
    await context.close()


@pytest.mark.browser
async def test_the_setup_page_wears_the_brand_and_fits_a_phone(chromium, aiohttp_server, settings, tmp_path: Path):
    ca = prepare(settings).ca
    assert ca is not None
    server = await aiohttp_server(create_setup_app(dataclasses.replace(settings, brand=museum(tmp_path)), ca))
    context = await chromium.new_context(viewport={"width": 390, "height": 844})
    page, watch = await open_page(context, str(server.make_url("/")), probe=False)
    await page.wait_for_function("document.querySelector('.brand-logo').complete")
    found = await page.evaluate(
        """() => {
          const root = document.documentElement;
          const small = [...document.querySelectorAll("summary, a.button")]
            .filter((el) => el.checkVisibility())
            .map((el) => el.getBoundingClientRect())
            .filter((r) => r.width < 48 || r.height < 48).length;
          const css = (sel, prop) => getComputedStyle(document.querySelector(sel))[prop];
          return {body: css("body", "backgroundColor"), title: css(".brand-title", "color"),
                  button: css("a.button", "backgroundColor"), sideways: root.scrollWidth > root.clientWidth, small};
        }"""
    )
    await page.screenshot(path=ARTIFACTS / "brand-setup-phone.png", full_page=True)
    assert found == {
        "body": "rgb(248, 250, 252)",  # the venue's background
        "title": "rgb(29, 78, 216)",  # its accent, on its title and the download buttons
        "button": "rgb(29, 78, 216)",
        "sideways": False,
        "small": 0,  # every summary and download button a thumb can hit
    }
    assert watch.errors == []  # the icon too is our own file, which the setup site's CSP allows
    assert watch.foreign_urls() == []
    await context.close()
