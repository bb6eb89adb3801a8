"""A hostile device on the LAN sends a few thousand bad requests (tests/hostile_device.py):
the server keeps serving everyone, the operator's terminal stays readable and safe, no secret
leaks, and memory comes back."""

from __future__ import annotations

import pytest

from tests.helpers import in_own_namespace, last_json


@pytest.mark.slow
def test_a_hostile_device_cannot_hurt_the_server_or_its_terminal() -> None:
    seen = last_json(in_own_namespace("-m", "tests.hostile_device", timeout=240))
    tail = seen["terminal_tail"]
    assert seen["tried"] >= 2500, seen["outcomes"]
    assert seen["healthz_ok"] and seen["page_ok"] and seen["answer_s"] < 1.0, seen
    assert seen["exit_code"] == 0, tail
    assert not seen["traceback"], tail
    assert seen["controls"] == [], (seen["controls"], tail)
    assert not seen["key_in_terminal"] and not seen["key_in_answers"]
    # Refusals are counted, not listed: a few thousand bad requests stay a few screens.
    assert seen["terminal_lines"] < 300, tail
    assert seen["rss_after"] - seen["rss_before"] < 40, (seen["rss_before"], seen["rss_after"])
    print(f"bad-input run: {seen['tried']} requests, outcomes {seen['outcomes']}")
