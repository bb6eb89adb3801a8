// What the agent shows beside the captions (the server's `show` tool): an image, a card of text, a
// link's QR code. Every string from the server goes in as text; images only as data: URIs the
// server made (the page loads nothing from elsewhere; the CSP allows nothing else either).

import { t } from "./i18n.js";

const MAX_CHARS = 600;

/** The "shown" panel: one thing at a time, until cleared. */
export class Shown {
  /** @param {HTMLElement} root the panel (hidden while nothing is shown) */
  constructor(root) {
    this.root = root;
  }

  get showing() {
    return !this.root.hidden;
  }

  /**
   * Show what one `show` event carries (what is missing is left out); replaces what was shown.
   * @param {{title?: string, text?: string, image?: string, alt?: string, qr?: string, link?: string}} event
   */
  show({ title, text, image, alt, qr, link }) {
    const parts = [];
    if (isImage(image)) parts.push(picture(image, "shown-image", textOf(alt) || t("shown.image")));
    if (textOf(title)) parts.push(element("h2", "shown-title", textOf(title)));
    if (textOf(text)) parts.push(element("p", "shown-text", textOf(text)));
    if (isImage(qr)) {
      const figure = element("figure", "shown-qr", "");
      figure.append(picture(qr, "", `QR code: ${textOf(link)}`));
      if (textOf(link)) figure.append(element("figcaption", "", textOf(link)));
      parts.push(figure);
    }
    this.root.replaceChildren(...parts);
    this.root.hidden = parts.length === 0;
  }

  clear() {
    this.root.replaceChildren();
    this.root.hidden = true;
  }
}

function isImage(value) {
  return typeof value === "string" && value.startsWith("data:image/");
}

function textOf(value) {
  return typeof value === "string" ? value.slice(0, MAX_CHARS) : "";
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.textContent = text;
  return node;
}

function picture(src, className, alt) {
  const img = element("img", className, "");
  img.alt = alt;
  img.decoding = "async";
  img.src = src;
  return img;
}
