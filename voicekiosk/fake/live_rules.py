"""What the Live fake decides where ``openai-live.md`` leaves a question open: each choice is one
named field of ``LiveRules`` (defaults below), so a test or the demo can flip it and nobody has to
guess what the fake assumed. The numbers in comments are the doc's open questions."""

from __future__ import annotations

from dataclasses import dataclass, field

# §1.7 / open question 6: the newest Python SDK enum (S1). The Realtime-only fable, nova and onyx
# are refused (aplisay); so is anything else, e.g. LiveKit's "aster".
_SDK_VOICE_NAMES = (
    "alloy ash aube ballad beacon bossa brise cedar cinder coral delta echo flitz gleam harema juni marin "
    "meridian nira noeul nuri quartz ripple sage shimmer shitan sillage stone tempo verse vesper willow "
)
SDK_VOICES = frozenset(_SDK_VOICE_NAMES.split())
# §1.6: the API's model pages. gpt-live-1-mini is announced for ChatGPT only.
MODELS = ("gpt-live-1", "gpt-live-1.1")
# §3.2 / open question 7: the September spec's tool types (S4); S1's newest copy adds more.
TOOL_TYPES = ("function", "web_search")
FATAL_CODES = ("insufficient_quota", "invalid_api_key", "account_deactivated", "billing_hard_limit_reached")


@dataclass(frozen=True)
class LiveRules:
    """The fake's answers to the doc's open questions (and to what the doc leaves unsaid)."""

    voices: frozenset[str] = SDK_VOICES
    # §1.4: "an unknown voice is refused with forbidden"; at HTTP or on the channel is not stated.
    # The fake refuses the POST with this status and code "forbidden".
    unknown_voice_status: int = 403
    models: tuple[str, ...] = MODELS
    tool_types: tuple[str, ...] = TOOL_TYPES
    # Open question 1/2: the only standby names seen (orq.ai). Accepted in ``session``; an empty
    # tuple makes the fake refuse them as unknown fields.
    standby_fields: tuple[str, ...] = ("idle_timeout_s", "wake_policy")
    # Open question 3: ``POST /v1/live/sessions/{id}/hangup`` is documented for SIP only. False: it
    # is refused for a WebRTC session (400), so the engine must use ``session.close``; True: it ends
    # the session with reason "remote_hangup".
    webrtc_hangup: bool = False
    # Open question 4: acks (``*.appended``, ``session.updated``, mute acks) echo ``client_event_id``.
    acks_echo_event_id: bool = True
    # Open question 5: ``session.update`` replaces ``delegation.responses`` whole (S5), not patched.
    update_replaces_delegation: bool = True
    # Open question 8: seconds from ``session.started`` to ``session.closed`` reason "expired".
    expires_in: float = 7200.0
    # Open question 10: the id prefix (``^live_[A-Za-z0-9_-]{1,128}$`` per S4).
    id_prefix: str = "live_"
    # Open question 12: the create's status.
    created_status: int = 201
    # Open question 13: the reason recorded when the peer connection ends without ``session.close``.
    peer_gone_reason: str = "connection_lost"
    # §5.3: whether ``usage.seconds`` shows the 15 s start charge as a floor. Unverified: no.
    usage_floor_s: float = 0.0
    # §2.5 (aplisay): the caller is not heard until the opening line completes.
    greeting_interruptible: bool = False
    # §2.3: the codes after which a session cannot go on (LiveKit's allow-list, S7; no other source
    # names any). ``LiveCall.fail`` sends only these, ``LiveCall.warn`` never.
    fatal_codes: tuple[str, ...] = FATAL_CODES
    # The doc names no code for these refusals; the fake uses these.
    not_started_code: str = "session_not_started"  # a command before session.started
    unknown_event_code: str = "unknown_parameter"  # an event type the channel does not take
    websocket_only_code: str = "unsupported_event"  # session.start / input_audio.append over WebRTC
    not_allowed_code: str = "client_event_not_allowed"  # refused by ``client.data_channel`` (HTTP-like 403)
    wrong_delegation_code: str = "invalid_delegation_mode"  # response.* under client delegation
    sdp_error_code: str = "invalid_sdp"  # with the message integrators saw, "failed to unmarshal SDP: EOF"
    extra_session_fields: tuple[str, ...] = field(default_factory=tuple)  # open question 2, if it is named
