// The interface between the page's conversation logic (session.js) and a voice API's adapter
// (realtime.js, live.js): types only, for editors and readers; nothing here runs.

/** @typedef {import("./call.js").Call} Call */
/** @typedef {import("./messages.js").Problem} Problem */

/**
 * What the page asks of a voice API (realtime.js, live.js); main.js picks one by config.engine.
 * @typedef {object} Engine
 * @property {(call: Call, opts: {greet: boolean, language: Language | null, turn: (state: string) => void,
 *   heard: () => void}) => void} begin
 *   a call is being opened and its events follow; `greet`: a visitor (a tap, a voice) asks for it;
 *   `language`: the visitor's pick, told to the agent first (before the greeting, so it is in it);
 *   `turn(state)` moves the page's state between events (e.g. on the agent's level); `heard()`:
 *   the API heard the visitor's words (the idle hang-up waits)
 * @property {(call: Call) => void} opened the call's channel just opened (before the microphone may
 *   have arrived): the first things said on it go now (Realtime: the language, then the greeting)
 * @property {boolean} levelSpeech "user-speaking" comes from the microphone's level, not from the
 *   API: noise can cause it, so it does not hold off the idle hang-up (words the API hears do)
 * @property {(event: {type: string}, state: string, callId: string | null) => (string | undefined)} handle
 *   one server event: captions, reports, what to send back; the state the turn moves to, if it moves
 * @property {(event: {type: string}) => (Problem | null)} ends the call cannot go on after this event
 * @property {(call: Call) => (Farewell | null)} farewell what to say on the channel to end the call
 *   (null: nothing, just close)
 * @property {(connectedAt: number) => number} rotateAt when (performance.now()) to start a fresh
 *   session, at the next quiet moment, before the API's time limit ends this one
 * @property {boolean} agentSpeaking
 * @property {(call: Call, instructions: string) => void} say the agent speaks now, as instructed
 * @property {(call: Call, language: Language) => void} language the visitor picked a language
 *   (the call is up): the agent speaks it from now on, and the transcription expects it
 * @property {() => void} reset the call is gone
 *
 * @typedef {object} Language one of config.languages (routes.py page_config)
 * @property {string} code e.g. "fr"
 * @property {string} name its name in its own words ("Français")
 * @property {string} [say] Realtime: what the page tells the agent ("The visitor chose Français: speak
 *   French from now on."); Live: the server tells it (POST call_url/{id}/language), never the page
 * @property {object} [transcription] Realtime's audio.input.transcription with this language's hint
 *
 * @typedef {object} Farewell
 * @property {{type: string}} say the client event that ends the session
 * @property {string} until the server event that confirms it (the connection closes then)
 * @property {(event: {type: string}) => (number | null)} [confirmed] reads that event: the
 *   session's final billed seconds, if it says
 */

export {};
