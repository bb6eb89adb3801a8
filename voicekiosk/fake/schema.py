"""A small strict JSON checker for the fake's request bodies: every object closed (no unknown field at
any level), required fields, types, enums and sizes, refused in OpenAI's words (``Refusal``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Check = Callable[[Any, str], None]  # (value, its param path); raises Refusal


@dataclass
class Refusal(Exception):
    """What OpenAI answers to a request it refuses: status, ``error.code``, message and ``param``."""

    status: int
    code: str
    message: str
    param: str | None = None


def tokens(text: str) -> int:
    """A token estimate good enough for size limits: about four characters per token."""
    return math.ceil(len(text) / 4)


def invalid(param: str, value: Any, allowed: Sequence[Any] = ()) -> Refusal:
    shown = f" Supported values are: {', '.join(repr(a) for a in allowed)}." if allowed else ""
    return Refusal(400, "invalid_value", f"Invalid value: {value!r}.{shown}", param)


def _wrong_type(param: str, expected: str, value: Any) -> Refusal:
    got = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array"}
    message = f"Invalid type for '{param}': expected {expected}, but got {got.get(type(value), 'an object')} instead."
    return Refusal(400, "invalid_type", message, param)


def string(*, max_tokens: int | None = None, max_chars: int | None = None, min_chars: int = 0) -> Check:
    def check(value: Any, param: str) -> None:
        if not isinstance(value, str):
            raise _wrong_type(param, "a string", value)
        too_long = (max_chars is not None and len(value) > max_chars) or (
            max_tokens is not None and tokens(value) > max_tokens
        )
        if too_long:
            limit = f"{max_tokens} tokens" if max_tokens is not None else f"{max_chars} characters"
            message = f"Invalid '{param}': string too long; expected at most {limit}."
            raise Refusal(400, "string_above_max_length", message, param)
        if len(value) < min_chars:
            message = f"Invalid '{param}': string too short; expected at least {min_chars} characters."
            raise Refusal(400, "string_below_min_length", message, param)

    return check


def boolean(value: Any, param: str) -> None:
    if not isinstance(value, bool):
        raise _wrong_type(param, "a boolean", value)


def number(*, minimum: float = -math.inf, integer: bool = False) -> Check:
    def check(value: Any, param: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
            raise _wrong_type(param, "an integer" if integer else "a number", value)
        if value < minimum:
            raise Refusal(400, "integer_below_min_value", f"Invalid '{param}': expected >= {minimum}.", param)

    return check


def one_of(*allowed: Any) -> Check:
    def check(value: Any, param: str) -> None:
        if value not in allowed:
            raise invalid(param, value, allowed)

    return check


def array(item: Check, *, max_items: int) -> Check:
    def check(value: Any, param: str) -> None:
        if not isinstance(value, list):
            raise _wrong_type(param, "an array", value)
        if len(value) > max_items:
            message = f"Invalid '{param}': array too long. Expected at most {max_items} items, got {len(value)}."
            raise Refusal(400, "array_above_max_length", message, param)
        for i, element in enumerate(value):
            item(element, f"{param}[{i}]")

    return check


def either(*checks: Check) -> Check:
    """The value passes one of ``checks``; else the refusal of the last."""

    def check(value: Any, param: str) -> None:
        for candidate in checks[:-1]:
            try:
                candidate(value, param)
                return
            except Refusal:
                continue
        checks[-1](value, param)

    return check


def nullable(inner: Check) -> Check:
    def check(value: Any, param: str) -> None:
        if value is not None:
            inner(value, param)

    return check


@dataclass
class Obj:
    """A closed JSON object: ``fields`` name what may appear, ``required`` what must."""

    fields: Mapping[str, Check]
    required: frozenset[str] = field(default_factory=frozenset)

    def __call__(self, value: Any, param: str) -> None:
        if not isinstance(value, dict):
            raise _wrong_type(param, "an object", value)
        for name in value:
            if name not in self.fields:
                where = f"{param}.{name}" if param else name
                raise Refusal(400, "unknown_parameter", f"Unknown parameter: '{where}'.", where)
        for name in sorted(self.required - set(value)):
            where = f"{param}.{name}" if param else name
            raise Refusal(400, "missing_required_parameter", f"Missing required parameter: '{where}'.", where)
        for name, item in value.items():
            self.fields[name](item, f"{param}.{name}" if param else name)


def tagged(param_key: str, variants: Mapping[str, Check]) -> Check:
    """An object whose ``param_key`` (e.g. ``type``) picks which check (a closed shape) it must pass."""

    def check(value: Any, param: str) -> None:
        if not isinstance(value, dict):
            raise _wrong_type(param, "an object", value)
        if param_key not in value:
            where = f"{param}.{param_key}"
            raise Refusal(400, "missing_required_parameter", f"Missing required parameter: '{where}'.", where)
        kind = value[param_key]
        if kind not in variants:
            raise invalid(f"{param}.{param_key}", kind, list(variants))
        variants[kind](value, param)

    return check
