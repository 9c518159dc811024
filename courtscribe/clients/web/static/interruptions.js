// Recesses on the clerk's screen: the hearing's pauses and resumptions as a list, and the one
// button that records the next (休庭 while in session, 继续开庭 during a recess).
import { api, clock, el } from "./common.js";

const $ = (id) => document.getElementById(id);

/** ``ctx``: base (the hearing's API path), utterances (the screen's lines),
 * notice(text, sticky). */
export function interruptions(ctx) {
  /** One the record holds (every screen hears of a new one): listed, and the button turns. */
  function add(i) {
    const what = i.kind === "paused" ? "休庭" : "继续开庭";
    $("interruptions").append(el("li", {}, `${clock(i.at_ms)} ${what}：${i.reason}`));
    $("pause").textContent = i.kind === "paused" ? "继续开庭" : "休庭";
    $("pause").dataset.kind = i.kind === "paused" ? "resumed" : "paused";
  }

  /** Before the record's are listed again (a backfill). */
  function clear() {
    $("interruptions").replaceChildren();
  }

  /** The button: she gives the reason; it is placed at the end of the last line heard. */
  async function pauseOrResume() {
    const kind = $("pause").dataset.kind || "paused";
    const reason = kind === "paused" ? prompt("休庭原因", "合议庭评议") : prompt("继续开庭说明", "继续开庭");
    if (!reason) return;
    const atMs = Math.max(0, ...[...ctx.utterances.values()].map((l) => l.u.end_ms));
    const body = { kind, at_ms: atMs, reason };
    try { await api(`${ctx.base}/interruptions`, { method: "POST", body }); }
    catch (err) { ctx.notice(err.message, true); }
  }

  return { add, clear, pauseOrResume };
}
