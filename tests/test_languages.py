"""The page's languages without a browser: the translation tables agree key for key, every word the
page asks for is in them, index.html has no words of its own, the first paint is in the default
language, the ``languages`` option is checked, and the agent is told to answer in the visitor's."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.test_cli import invoke
from voicekiosk.fake.client_events import CLIENT_EVENTS
from voicekiosk.fake.schema import Refusal
from voicekiosk.languages import shipped, table
from voicekiosk.settings import Settings, load_settings
from voicekiosk.upstream.live import PAGE_EVENTS, live_session
from voicekiosk.upstream.realtime import session_config

ROOT = Path(__file__).resolve().parent.parent
STATIC, TEMPLATES = ROOT / "static", ROOT / "templates"
EN = table("en")
NAMESPACES = {key.split(".", 1)[0] for key in EN}
PLACEHOLDER = re.compile(r"\{(\w+)\}")
# Text in index.html that is no word of any language: a hash's name, the viewport's settings.
NOT_WORDS = {"SHA-256", "width=device-width, initial-scale=1, viewport-fit=cover"}


def test_we_ship_english_french_german_and_spanish():
    assert set(shipped()) >= {"en", "fr", "de", "es"}


@pytest.mark.parametrize("code", [code for code in shipped() if code != "en"])
def test_every_table_has_exactly_the_english_keys_each_translated(code):
    words = table(code)
    assert sorted(set(EN) - set(words)) == [], f"{code}.json lacks these"
    assert sorted(set(words) - set(EN)) == [], f"{code}.json has keys English does not"
    for key, text in words.items():
        assert text.strip(), f"{code}.json: {key} is empty"
        assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(EN[key])), f"{code}.json: {key}"
    # Translated, not copied: most of what a visitor reads differs from the English.
    same = [key for key in EN if words[key] == EN[key] and len(PLACEHOLDER.sub("", EN[key])) > 12]
    assert same == [], f"{code}.json: still English"


def _page_keys() -> set[str]:
    """Every key the page's code and templates name: t("..."), other literals in a table's
    namespaces (rest("detail.goodbye")), data-i18n attributes, and state.<each state>."""
    keys: set[str] = set()
    spaces = "|".join(sorted(NAMESPACES))
    literal = re.compile(rf"""["'`]((?:{spaces})\.[\w.-]+)["'`]""")
    for path in STATIC.glob("*.js"):
        source = re.sub(r"^\s*(//|/?\*).*$", "", path.read_text(encoding="utf-8"), flags=re.M)  # code, not comments
        keys |= set(re.findall(r"""\bt\(\s*["']([^"']+)["']""", source)) | set(literal.findall(source))
    for path in TEMPLATES.glob("*.html"):
        source = path.read_text(encoding="utf-8")
        keys |= set(re.findall(r'data-i18n(?:-aria-label)?="([^"{]+)"', source))
        keys |= set(re.findall(r"""\bt\(\s*["']([^"']+)["']""", source))
    states = re.search(r"export const STATES = \[(.*?)\];", (STATIC / "messages.js").read_text(), re.S)
    assert states is not None
    keys |= {f"state.{name}" for name in re.findall(r'"([\w-]+)"', states.group(1))}
    return keys


def test_every_key_the_page_uses_is_in_english():
    keys = _page_keys()
    assert {"button.start", "state.listening", "caption.you", "detail.goodbye"} <= keys  # the scan works
    assert sorted(keys - set(EN)) == []
    # The problems the page raises itself are explained (messages.js: problem.<code>.title).
    codes = {code for path in STATIC.glob("*.js") for code in re.findall(r'new Problem\("(\w+)"', path.read_text())}
    assert {"no_mic", "dropped", "insecure"} <= codes
    # (failed: explained generically, with its message; stopped: the visitor stopped, nothing shows)
    assert sorted(code for code in codes - {"failed", "stopped"} if f"problem.{code}.title" not in EN) == []


def test_the_attract_screens_two_invitations_exist():
    assert EN["attract.tap"] == "Tap to talk" and EN["attract.say"] == "Say hello"


class _Text(HTMLParser):
    """The visible text of an HTML document, and the values of its labelling attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "title"):
            self.hidden += 1
        labels = ("aria-label", "alt", "title", "placeholder")
        self.texts += [value for name, value in attrs if name in labels and value]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "title"):
            self.hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden and data.strip():
            self.texts.append(" ".join(data.split()))


def test_index_html_has_no_words_of_its_own():
    """Outside Jinja expressions the template's text is markup only: every word comes from t()."""
    source = (TEMPLATES / "index.html").read_text(encoding="utf-8")
    bare = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}|<!--.*?-->", "", source, flags=re.S)
    parser = _Text()
    parser.feed(bare)
    words = [text for text in parser.texts if re.search(r"[A-Za-z]{2}", text) and text not in NOT_WORDS]
    assert words == []


@pytest.mark.parametrize("code", ["fr", "de"])
async def test_the_first_paint_is_in_the_default_language(make_client, code):
    client = await make_client(languages=(code, "en"))
    html = await (await client.get("/")).text()
    assert f'<html lang="{code}">' in html
    parser = _Text()
    parser.feed(html)
    # (English on its own button is the name of a language, not a word left untranslated.)
    english = {text for key, text in EN.items() if table(code)[key] != text and not key.startswith("language.")}
    assert [text for text in parser.texts if text in english] == []
    words = table(code)
    for key in ("button.start", "state.idle", "hint.start", "button.retry"):
        assert words[key] in parser.texts
    # The buttons, each language's name in its own words, the default one pressed.
    assert re.search(rf'lang="{code}" data-language="{code}" aria-pressed="true">{words["language.name"]}<', html)
    assert 'lang="en" data-language="en" aria-pressed="false">English<' in html
    config = json.loads(re.search(r'id="vk-config">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    assert config["language"] == code and config["strings"] == words
    assert config["invitations"] == [
        {"lang": code, "tap": words["attract.tap"], "say": words["attract.say"]},
        {"lang": "en", "tap": EN["attract.tap"], "say": EN["attract.say"]},
    ]
    assert [language["name"] for language in config["languages"]] == [words["language.name"], "English"]


async def test_one_language_shows_no_buttons_and_the_page_config_invites_in_it(make_client):
    client = await make_client()
    html = await (await client.get("/")).text()
    assert '<html lang="en">' in html and "data-language=" not in html
    config = await (await client.get("/api/config")).json()
    assert config["invitations"] == [{"lang": "en", "tap": "Tap to talk", "say": "Say hello"}]


async def test_the_other_tables_are_static_files_with_validators(make_client):
    client = await make_client(languages=("en", "es"))
    response = await client.get("/static/i18n/es.json")
    assert response.status == 200 and await response.json() == table("es")
    again = await client.get("/static/i18n/es.json", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304
    assert (await client.get("/static/i18n/xx.json")).status == 404
    assert (await client.get("/static/i18n/..%2Fsession.js")).status == 404


def test_the_option_takes_only_languages_we_have_words_for():
    settings = load_settings({}, env={"VOICEKIOSK_LANGUAGES": "EN, fr,de,es,fr"})
    assert settings.languages == ("en", "fr", "de", "es")
    assert Settings().languages == ("en",)
    result = invoke("config", env={"VOICEKIOSK_LANGUAGES": "en,fr"})
    assert result.exit_code == 0 and re.search(r"languages\s.*en, fr", result.output), result.output
    for bad, message in (("en,xx", "'xx' has no translation table (shipped: de, en, es, fr)"), (",", "at least one")):
        result = invoke("config", env={"VOICEKIOSK_LANGUAGES": bad})
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], result.output


def test_the_agent_is_told_to_answer_in_the_visitors_language_on_both_engines():
    many = Settings(languages=("en", "fr", "de", "es"), instructions="Be kind.")
    line = "Visitors may speak English, French, German or Spanish. Answer in the language the visitor speaks"
    realtime = session_config(many)
    assert realtime["instructions"].startswith("Be kind.\n\n" + line)
    live = live_session(Settings(languages=many.languages, instructions="Be kind.", engine="live"))
    assert live["instructions"].startswith("Be kind.\n\n" + line)
    # Whatever the languages, the page's channel appends no rules (the server tells the visitor's
    # choice: test_call_language.py): commentary and close only.
    assert live["client"]["data_channel"]["allowed_client_events"] == list(PAGE_EVENTS)
    one = Settings(instructions="Be kind.", engine="live")
    assert live_session(one)["instructions"] == "Be kind."
    assert live_session(one)["client"]["data_channel"]["allowed_client_events"] == list(PAGE_EVENTS)
    assert session_config(Settings(instructions="Be kind."))["instructions"] == "Be kind."


def _refusal(kind: str, event: dict) -> tuple[str, str | None] | None:
    try:
        CLIENT_EVENTS[kind](event, "")
    except Refusal as refusal:
        return refusal.code, refusal.param
    return None


def test_the_fake_takes_exactly_the_shapes_the_page_sends_on_a_language_tap():
    """Realtime's session.update (a closed GA session) and a system message item; anything else in
    them is refused as OpenAI refuses it."""
    hint = {"model": "gpt-4o-mini-transcribe", "language": "fr"}
    update = {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"transcription": hint}}}}
    assert _refusal("session.update", update) is None
    bad = {**hint, "lang": "fr"}
    update["session"]["audio"]["input"]["transcription"] = bad
    assert _refusal("session.update", update) == ("unknown_parameter", "session.audio.input.transcription.lang")
    assert _refusal("session.update", {"type": "session.update", "session": {"language": "fr"}}) == (
        "unknown_parameter",
        "session.language",
    )
    text = [{"type": "input_text", "text": "The visitor chose Français: speak French from now on."}]
    message = {"type": "conversation.item.create", "item": {"type": "message", "role": "system", "content": text}}
    assert _refusal("conversation.item.create", message) is None
    message["item"]["role"] = "narrator"
    assert _refusal("conversation.item.create", message) == ("invalid_value", "item.role")
    message["item"] |= {"role": "system", "content": [{"type": "input_text", "text": "x", "lang": "fr"}]}
    assert _refusal("conversation.item.create", message) == ("unknown_parameter", "item.content[0].lang")
