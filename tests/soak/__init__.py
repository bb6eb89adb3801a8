"""``make soak``: one kiosk page against a real ``voicekiosk serve`` and the fake OpenAI for minutes,
through drops, an expired session, a refusal window and a server restart; then a busy line; then
the figures (``python -m tests.soak --minutes 10``). Not collected by pytest: ``tests/test_soak.py``
tests its plain pieces."""
