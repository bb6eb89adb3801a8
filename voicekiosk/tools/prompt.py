"""What the server adds to the agent's instructions, for both engines: when it declares tools (a slow
tool must not freeze the conversation, so the agent says it is checking before it uses one), and
when the kiosk offers more than one language (the agent answers in the visitor's)."""

from __future__ import annotations

from collections.abc import Sequence

from voicekiosk.languages import english_name, translate

ONE_MOMENT = (
    "Before you use a tool that may take a moment, tell the visitor in a few words that you are "
    'checking (for example "One moment, let me check."), then use it.'
)


# A goodbye is small talk, yet ending the call is the backend's end_conversation tool.
GOODBYE = "When the visitor says goodbye or is done, delegate: end_conversation ends the call after your goodbye.\n"


def with_tools(instructions: str, names: Sequence[str], *, delegated: bool = False) -> str:
    """``instructions`` with the tool policy appended (unchanged without tools). ``delegated``: the
    voice model hands tool work to a backend (GPT-Live's Responses delegation), so the policy is
    the "Delegation policy" its guide asks for in the voice prompt (``openai-live.md`` §3.6)."""
    if not names:
        return instructions
    if not delegated:
        return f"{instructions}\n\n{ONE_MOMENT}"
    policy = (
        "Delegation policy:\n"
        f"Backend tools: {', '.join(names)}.\n"
        "Delegate to the backend when: the visitor asks for something these tools look up or do.\n"
        "Do not delegate: greetings, small talk, or what you can answer from these instructions.\n"
        + (GOODBYE if "end_conversation" in names else "")
        + ONE_MOMENT
    )
    return f"{instructions}\n\n{policy}"


def with_languages(instructions: str, codes: Sequence[str]) -> str:
    """``instructions`` with the language policy appended when more than one language is offered."""
    if len(codes) < 2:
        return instructions
    names = [english_name(code) for code in codes]
    offered = ", ".join(names[:-1]) + f" or {names[-1]}"
    return (
        f"{instructions}\n\nVisitors may speak {offered}. Answer in the language the visitor speaks, "
        f"among these; when unsure, use {names[0]}."
    )


def chosen_language(code: str) -> str:
    """What the agent is told when the visitor picks language ``code`` (one of ``shipped()``)."""
    return f"The visitor chose {translate(code, 'language.name')}: speak {english_name(code)} from now on."
