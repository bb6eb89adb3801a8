// Opens calls: peer connection, offer, SDP exchange, answer. The page inlines this file (its
// Content-Security-Policy pins it by hash), so an autostarting page asks for the microphone and
// connects while its modules still load; call.js carries each call on from what openCall() gives
// (the shapes it hands over are written down in call.js, not here: this file is inlined in every page).
"use strict";
(() => {
  const MIC = { audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true } };
  const config = JSON.parse(document.getElementById("vk-config").textContent);

  /** @returns {Promise<Outcome>} never rejects */
  function attempt(step, url, init) {
    return fetch(url, { cache: "no-store", ...init }).then(
      (response) => ({ step, response }),
      (error) => ({ step, error }),
    );
  }

  /** Apply a successful SDP answer; a failed one is left for call.js to explain. */
  async function answered(pc, outcome, live) {
    if (!outcome.response?.ok) return outcome;
    try {
      await live(pc.setRemoteDescription({ type: "answer", sdp: await outcome.response.text() }));
    } catch (error) {
      return { ...outcome, error }; // e.g. hung up meanwhile: call.js still ends the call upstream
    }
    return outcome;
  }

  /**
   * A peer connection with its audio transceiver and "oai-events" channel, the offer/answer under way.
   * @returns {OpenedCall}
   */
  function openCall() {
    const pc = new RTCPeerConnection(); // no STUN/TURN: OpenAI offers public host candidates
    const audio = pc.addTransceiver("audio", { direction: "sendrecv" });
    const dc = pc.createDataChannel("oai-events"); // before the offer, so the offer carries it
    const backlog = [];
    dc.onmessage = (event) => backlog.push(event.data);
    const key = config.sdp === "browser" ? attempt("mint", config.token_url, { method: "POST" }) : null;
    let offered, abort;
    const described = new Promise((resolve) => (offered = resolve)); // the local offer is set
    // A closed peer connection leaves its pending operations unsettled forever: race them
    // against abort(), which call.js calls when it closes the call.
    const aborted = new Promise((resolve) => (abort = resolve));
    const live = (operation) => Promise.race([operation, aborted.then(() => Promise.reject(new Error("closed")))]);
    const exchange = live(pc.createOffer()).then(async (offer) => {
      // The offer travels while it is being set locally (that takes tens of ms in Chromium);
      // the answer is applied once both are done.
      const local = live(pc.setLocalDescription(offer)).then(offered);
      local.catch(() => {}); // settled below, or moot when minting failed
      // If it failed (closed meanwhile) the outcome still carries the call's id: call.js hangs up.
      const settle = (outcome) => local.then(() => answered(pc, outcome, live), (error) => ({ ...outcome, error }));
      const sdp = { method: "POST", body: offer.sdp };
      if (!key) {
        return settle(await attempt("call", config.call_url, { ...sdp, headers: { "Content-Type": "application/sdp" } }));
      }
      const minted = await key;
      if (!minted.response?.ok) return minted;
      let value, calls_url, claim;
      try {
        ({ value, calls_url, claim } = await minted.response.json());
      } catch (error) {
        return { step: "mint", error };
      }
      // Only Authorization and Content-Type: OpenAI's CORS preflight allows no custom header.
      const headers = { Authorization: `Bearer ${value}`, "Content-Type": "application/sdp" };
      return { ...(await settle(await attempt("upstream", calls_url, { ...sdp, headers }))), claim };
    });
    return { pc, sender: audio.sender, remote: audio.receiver.track, dc, exchange, backlog, described, abort };
  }

  const boot = { config, openCall, mic: MIC, early: null, tapped: false };
  window.voicekioskBoot = boot;
  // A tap on Start (or the attract screen) before the page's code has loaded is kept, not lost;
  // main.js acts on it.
  const keepTap = (event) => (boot.tapped ||= Boolean(event.target.closest?.("#start, #attract")));
  document.addEventListener("click", keepTap);
  boot.forget = () => document.removeEventListener("click", keepTap);
  const app = () => import("/static/main.js");
  const open = config.hours?.open ?? true; // outside the opening hours: no call, no microphone
  if (!(config.autostart && open && window.isSecureContext && navigator.mediaDevices?.getUserMedia && window.RTCPeerConnection)) {
    app();
    return;
  }
  const call = openCall();
  // The connection needs no microphone: ask for it once the offer is made, as starting the
  // capture device and the peer connection at the same moment slows both down.
  const mic = call.described.then(() => navigator.mediaDevices.getUserMedia(MIC));
  mic.catch(() => {}); // main.js explains a refusal
  boot.early = { mic, call };
  // The page's code runs once the call is through (or has failed): until then the main thread
  // belongs to the connection. At most a couple of seconds, so the page never looks dead.
  const through = new Promise((resolve) => {
    call.dc.addEventListener("open", resolve);
    call.dc.addEventListener("close", resolve);
    setTimeout(resolve, 2000);
    call.exchange.then((outcome) => outcome.response?.ok || resolve(), resolve);
  });
  through.then(app);
})();
