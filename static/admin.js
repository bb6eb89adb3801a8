// The status page's refresh: polls /admin/status every few seconds while the tab is shown and
// places its text with textContent (the server formats everything: one view for both paints).
// "Hang up" posts without leaving the page. With JS off the page is the same, reloaded by hand,
// and "Hang up" is a plain form post.

const main = document.querySelector("main.admin");
const STATUS_URL = main.dataset.statusUrl;
const REFRESH_MS = Number(main.dataset.refreshMs) || 2000;
const updated = document.getElementById("updated");
const notice = document.getElementById("notice"); // a failed hang-up, until the next one works
const callsTable = document.getElementById("calls");
let formToken = callsTable.dataset.formToken; // the latest /admin/status gave (a restart makes a new one)
const shown = new Map(); // section -> the JSON last placed: unchanged sections are left alone
let timer = 0;

function element(tag, text = "", className = "") {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) node.className = className;
  return node;
}

/** Replace a table's rows with `rows` (arrays of text); `extra(row, tr)` may add cells. */
function fill(table, rows, extra = null) {
  const body = table.tBodies[0];
  const columns = table.tHead ? table.tHead.rows[0].cells.length : 2;
  const trs = rows.map((row) => {
    const tr = document.createElement("tr");
    for (const text of row.cells ?? row) tr.append(element("td", text));
    extra?.(row, tr);
    return tr;
  });
  if (!trs.length) {
    const tr = element("tr", "", "empty");
    const td = element("td", table.dataset.empty);
    td.colSpan = columns;
    tr.append(td);
    trs.push(tr);
  }
  body.replaceChildren(...trs);
}

function hangUpCell(call, tr) {
  tr.prepend(element("td", call.id));
  const form = element("form", "", "hangup");
  form.method = "post";
  form.action = `/admin/calls/${encodeURIComponent(call.id)}/hangup`;
  const token = element("input");
  Object.assign(token, { type: "hidden", name: "form_token", value: formToken });
  const button = element("button", "Hang up");
  button.type = "submit";
  form.append(token, button);
  const td = element("td");
  td.append(form);
  tr.append(td);
}

function summary(pairs) {
  const list = document.getElementById("summary");
  list.replaceChildren(
    ...pairs.map(([name, value]) => {
      const div = element("div");
      div.append(element("dt", name), element("dd", value));
      return div;
    }),
  );
}

function place(status) {
  formToken = status.form_token || formToken;
  const sections = {
    summary: () => summary(status.summary),
    calls: () => fill(callsTable, status.calls, hangUpCell),
    totals: () => fill(document.getElementById("totals"), status.totals),
    problems: () => fill(document.getElementById("problems"), status.problems),
    tools: () => fill(document.getElementById("tools"), status.tools),
    certificates: () => fill(document.getElementById("certificates"), status.certificates),
  };
  for (const [name, draw] of Object.entries(sections)) {
    const json = JSON.stringify(status[name]);
    if (shown.get(name) === json) continue;
    shown.set(name, json);
    draw();
  }
}

async function refresh() {
  clearTimeout(timer);
  try {
    const response = await fetch(STATUS_URL, { headers: { Accept: "application/json" }, cache: "no-store" });
    if (response.status === 401) throw new Error("admin access ended: reload with the admin token");
    if (!response.ok) throw new Error(`the server answered ${response.status}`);
    place(await response.json());
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}.`;
    updated.classList.remove("stale");
  } catch (error) {
    updated.textContent = `Not updating: ${error.message || "the server cannot be reached"}.`;
    updated.classList.add("stale");
  }
  if (!document.hidden) timer = setTimeout(refresh, REFRESH_MS);
}

document.addEventListener("submit", async (event) => {
  const form = event.target.closest?.("form.hangup");
  if (!form) return;
  event.preventDefault();
  const button = form.querySelector("button");
  button.disabled = true;
  button.textContent = "Hanging up…";
  try {
    let response = await post(form);
    if (response.status === 403) {
      await refresh(); // the server restarted since the last refresh: its new form token, then again
      response = await post(form);
    }
    if (!response.ok) {
      const answer = await response.json().catch(() => null);
      throw new Error(answer?.error?.message || `the server answered ${response.status}`);
    }
    notice.hidden = true;
  } catch (error) {
    notice.textContent = `Hang-up failed: ${error.message}`;
    notice.hidden = false;
  }
  shown.delete("calls");
  refresh();
});

/** Post a Hang up form with the latest form token. */
function post(form) {
  form.elements.form_token.value = formToken;
  return fetch(form.action, {
    method: "POST",
    body: new URLSearchParams(new FormData(form)),
    headers: { Accept: "application/json" },
  });
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) refresh();
});
refresh();
