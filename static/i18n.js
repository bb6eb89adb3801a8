// The page's words in the visitor's language: one flat table per language (static/i18n/*.json),
// the default one inlined in the page's config (the first paint waits for no fetch), the others
// fetched when chosen. Adding a word: the same key in every table, then t("key") in a module or
// data-i18n="key" in the template (tests/test_languages.py checks both).

const config = JSON.parse(document.getElementById("vk-config")?.textContent || "{}");
let current = config.language || "en";
let words = config.strings || {};
const tables = new Map([[current, words]]);
const listeners = new Set();
let asked = 0; // the latest useLanguage() call: a slower earlier fetch does not win

/** The words for `key` in the current language, `{name}` placeholders filled from `vars`. */
export function t(key, vars = null) {
  let text = words[key] ?? key;
  if (vars) for (const [name, value] of Object.entries(vars)) text = text.replaceAll(`{${name}}`, String(value));
  return text;
}

/** Whether the current table has `key` (an optional text, such as a problem's help). */
export function has(key) {
  return Object.hasOwn(words, key);
}

/** The current language's code. */
export function language() {
  return current;
}

/** Call `listener(code)` after each switch (for the texts a module draws itself). */
export function onLanguage(listener) {
  listeners.add(listener);
}

/** Switch to `code` (fetched once, then kept): `<html lang>`, marked elements, then the listeners. */
export async function useLanguage(code) {
  const ticket = ++asked;
  if (!tables.has(code)) {
    const response = await fetch(`${config.i18n_url}${encodeURIComponent(code)}.json`);
    if (!response.ok) throw new Error(`no words for ${code}: HTTP ${response.status}`);
    tables.set(code, await response.json());
  }
  if (ticket !== asked) return;
  current = code;
  words = tables.get(code);
  document.documentElement.lang = code;
  translate(document);
  for (const listener of listeners) listener(code);
}

/** Put the current words in `root`'s elements marked data-i18n (text; the element's other data-*
 * attributes fill the placeholders) and data-i18n-aria-label. */
export function translate(root) {
  for (const element of root.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n, element.dataset);
  }
  for (const element of root.querySelectorAll("[data-i18n-aria-label]")) {
    element.setAttribute("aria-label", t(element.dataset.i18nAriaLabel));
  }
}
