"""The start-up banner: every URL, QR codes that decode to them, nothing secret but the token link."""

from __future__ import annotations

import io

from rich.console import Console

from voicekiosk.console import banner, qr_text
from voicekiosk.notices import endpoints, startup_notes
from voicekiosk.settings import Settings, load_settings


def render(settings: Settings, lan: list[str], token: str | None = "TOKEN123") -> str:
    out = io.StringIO()
    Console(file=out, width=140, color_system=None).print(banner(settings, endpoints(settings, lan, token)))
    return out.getvalue()


def test_every_address_is_listed_with_its_setup_page_and_token_link():
    text = render(Settings(api_key="sk-secret-123456789"), ["192.0.2.10", "198.51.100.7"])
    assert "https://localhost:8116/" in text
    for address in ("192.0.2.10", "198.51.100.7"):
        assert f"https://{address}:8116/?token=TOKEN123" in text
        assert f"http://{address}:8117/" in text
    assert text.count("2 · talk") == 2 and text.count("1 · first time on a phone: trust") == 2
    assert "sk-secret" not in text


def test_no_lan_says_so_and_shows_no_qr():
    text = render(Settings(host="0.0.0.0"), [])
    assert "2 · talk" not in text and "https://localhost:8116/" in text
    notes = startup_notes(Settings(host="0.0.0.0", api_key=None), [])
    assert any("No LAN address found" in n for n in notes) and any("OPENAI_API_KEY" in n for n in notes)
    assert any("--open" in n for n in startup_notes(Settings(open=True, api_key="k"), ["192.0.2.10"]))
    local = render(Settings(host="127.0.0.1", tls=False), ["192.0.2.10"])
    assert "http://127.0.0.1:8116/" in local and "192.0.2.10" not in local and "token" not in local


def test_the_qr_code_is_a_real_qr_code():
    code = qr_text("https://192.0.2.10:8116/?token=abc").plain.splitlines()
    assert len(code) >= 12 and len({len(line) for line in code}) == 1  # square-ish, even rows
    # The three finder patterns: solid corners, top left and top right, after the quiet zone.
    assert code[1][2:9] == "█▀▀▀▀▀█" and code[1][-9:-2] == "█▀▀▀▀▀█"


def test_realtime_settings_given_with_live_are_named_as_unused():
    settings = load_settings({"model": "gpt-live-1.1", "turn_detection": "semantic_vad"}, env={})
    [note] = [n for n in startup_notes(settings, ["192.0.2.10"]) if "not used" in n]
    assert note == "turn_detection: not used by the live engine."
    realtime = load_settings({"turn_detection": "semantic_vad", "greeting": "Hello"}, env={})
    assert not [n for n in startup_notes(realtime, ["192.0.2.10"]) if "not used" in n]  # Realtime greets too
