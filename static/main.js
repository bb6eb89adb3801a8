// The page's entry point (boot.js imports it): the view, the session and the controls, wired.

import { Conversation } from "./conversation.js";
import { Reporter } from "./reporter.js";
import { Session } from "./session.js";
import { View } from "./view.js";

const boot = window.voicekioskBoot;
const view = new View(boot.config.setup_url);
const reporter = new Reporter(boot.config.events_url);
const session = new Session(boot, { view, reporter, conversation: new Conversation(view, reporter) });
view.bind({ start: () => session.toggle(), mute: () => session.toggleMute(), retry: () => session.start() });
window.voicekiosk = session; // for the curious (and for tests): the page's state, read-only by convention
boot.forget();
if (boot.config.autostart || boot.tapped) session.start();
