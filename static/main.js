// The page's entry point (boot.js imports it): the view, the session and the controls, wired.

import { Hours } from "./hours.js";
import { useLanguage } from "./i18n.js";
import { Kiosk } from "./kiosk.js";
import { LiveEngine } from "./live.js";
import { RealtimeEngine } from "./realtime.js";
import { Reporter } from "./reporter.js";
import { Session } from "./session.js";
import { View } from "./view.js";

// The one place the page tells the voice APIs apart (config.engine, from the server's settings).
const ENGINES = { realtime: RealtimeEngine, live: LiveEngine };

const boot = window.voicekioskBoot;
const view = new View(boot.config.setup_url, boot.config.invitations);
const reporter = new Reporter(boot.config.events_url, { kiosk: boot.config.kiosk });
const Engine = ENGINES[boot.config.engine] ?? RealtimeEngine;
const hours = new Hours(boot.config);
const session = new Session(boot, { view, reporter, engine: new Engine(view, reporter, boot.config), hours });
hours.watch(session); // closed now: shown so, no call
// Retry now is no new conversation: a visitor already greeted is not greeted again.
const retry = () => session.start({ greet: false });
// A language's button: the call is told at once, the page's words follow (a fetch the first time).
const language = (code) => {
  session.setLanguage(code);
  code ??= boot.config.language;
  useLanguage(code).catch((error) => reporter.send({ type: "error", message: `language ${code}: ${error}` }));
};
// A tap on the attract screen is a visitor, as a tap on Start is: greeted.
const invite = () => session.start();
view.bind({ start: () => session.toggle(), mute: () => session.toggleMute(), retry, language, invite });
const kiosk = new Kiosk(boot.config, document.getElementById("veil"));
view.attract.listen((shown) => {
  kiosk.idle(shown);
  if (shown && session.language) language(null); // the visitor has gone: the next one starts in the default
});
window.voicekiosk = session; // for the curious (and for tests): the page's state, read-only by convention
boot.forget();
// Only a tap is a visitor to greet: a kiosk that starts by itself greets an empty room.
if (boot.config.autostart || boot.tapped) session.start({ greet: boot.tapped });
// After the call's start (it must not wait): an idle page hears the operator's /api/start too.
reporter.start();
