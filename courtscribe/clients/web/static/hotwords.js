// The hearing's vocabulary on the clerk's screen: words the recognizer is told to expect. The
// hearing's own hotwords can be removed (×); parties' and participants' names come with them.
import { api, el } from "./common.js";

const $ = (id) => document.getElementById(id);

/** ``ctx``: base (the hearing's API path), notice(text, sticky). */
export function hotwords(ctx) {
  let own = [];

  /** ``v``: the server's answer (``words``, and ``hotwords``: the hearing's own, when it says). */
  function show(v) {
    if (v.hotwords) own = v.hotwords;
    $("hotwords").replaceChildren(...v.words.map((w) => own.includes(w)
      ? el("li", { class: "own" }, w,
           el("button", { type: "button", title: "删除热词", "aria-label": `删除热词 ${w}`,
                          onclick: () => save(own.filter((x) => x !== w)) }, "×"))
      : el("li", {}, w)));
  }

  async function save(words) {
    try { show(await api(`${ctx.base}/hotwords`, { method: "PUT", body: { words } })); }
    catch (err) { ctx.notice(err.message, true); }
  }

  /** One more of the hearing's own (a word it has already is left as it is). */
  async function add(word) {
    if (word && !own.includes(word)) await save([...own, word]);
  }

  return { show, add };
}
