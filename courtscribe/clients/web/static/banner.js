// The clerk's banner: what the page has to tell her (a toast, or a notice that stays until she
// closes it), the live connection's state, and a refused token, which outranks all else said there.
import { ApiError, closedFor, el, refusal } from "./common.js";

const $ = (id) => document.getElementById(id);
const TOAST_MS = 6000;

let notices = 0; // a toast hides itself only if nothing was said after it

/** Say ``text`` in the banner: ``sticky``, until she dismisses it (×) or something else is said. */
export function notice(text, sticky = false) {
  if (document.body.classList.contains("refused")) return; // the refusal stays what the clerk reads
  const b = $("banner");
  const shown = ++notices;
  b.replaceChildren(text);
  b.hidden = false;
  b.dataset.sticky = sticky ? "1" : "";
  if (sticky) {
    b.append(el("button", { type: "button", class: "dismiss", title: "关闭提示", "aria-label": "关闭提示",
                            onclick: () => { b.hidden = true; b.dataset.sticky = ""; } }, "×"));
  } else {
    setTimeout(() => { if (shown === notices && !b.dataset.sticky) b.hidden = true; }, TOAST_MS);
  }
}

/** The token was turned away: say so (not the server's words), and offer nothing that cannot
 * work. */
export function refuse(status) {
  const b = $("banner");
  b.textContent = refusal(status);
  b.hidden = false;
  b.dataset.sticky = "refused";
  document.body.classList.add("refused");
  for (const c of document.querySelectorAll("button, input, select, textarea")) c.disabled = true;
}

/** An API call failed: a refused token is said as such, anything else as ``what``: the reason. */
export function failed(what, err) {
  if (err instanceof ApiError && (err.status === 401 || err.status === 403)) refuse(err.status);
  else notice(`${what}${err.message}`, true);
}

/** The live connection is back and the screen caught up: the banner that said it was down goes. */
export function connectionUp() {
  const b = $("banner");
  if (b.dataset.sticky === "down") { b.hidden = true; b.dataset.sticky = ""; }
  document.body.dataset.connection = "open";
}

/** The live connection dropped (``e``: its close event, if any); it reconnects by itself. */
export function connectionDown(e) {
  document.body.dataset.connection = "down";
  if (e && (e.code === 4401 || e.code === 4403)) { refuse(e.code); return; }
  const b = $("banner");
  b.textContent = e && e.code >= 4400 ? (closedFor(e.code) || `无法连接：${e.reason || e.code}`)
    : "连接已断开，正在重新连接…（笔录不会丢失）";
  b.hidden = false;
  b.dataset.sticky = "down";
}
