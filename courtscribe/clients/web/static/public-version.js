// The public version on the clerk's screen: who is protected (minors, victims, protected
// witnesses), and every mask it makes, each of which the clerk may lift; the record itself never
// changes.
import { api, clock, el } from "./common.js";

const $ = (id) => document.getElementById(id);
const HIDDEN = { id_card: "身份证号", mobile: "手机号", landline: "电话", bank_card: "银行卡号",
  number: "号码", plate: "车牌", email: "邮箱", address: "住址", name: "姓名", clerk: "书记员隐去" };

/** ``ctx``: base (the hearing's API path), utterances (the screen's lines),
 * notice(text, sticky). */
export function publicVersion(ctx) {
  const { base, utterances } = ctx;

  /** The participants' protect buttons and the redaction log, as the server has them now. */
  async function show() {
    let got;
    try { got = await api(`${base}/redactions`); }
    catch { return; /* an older server, or no right to read */ }
    for (const b of document.querySelectorAll("#participants .protect")) {
      const on = got.protected.includes(b.dataset.name);
      b.setAttribute("aria-pressed", String(on));
      b.textContent = on ? "受保护" : "保护";
    }
    $("redactions").replaceChildren(...got.log.map((r) => {
      const line = r.utterance_id && utterances.get(r.utterance_id);
      const lift = el("button", { type: "button", class: "lift", title: "公开版中不隐去这一处" }, "不隐去");
      lift.addEventListener("click",
        () => choose({ action: "lift", text: r.words, utterance_id: r.utterance_id }));
      return el("li", {}, line ? el("small", {}, `${clock(line.u.start_ms)} `) : null,
        `${HIDDEN[r.category] || r.category}：${r.words} → ${r.replacement}`,
        r.category === "clerk" ? null : lift);
    }));
  }

  /** Words hidden (``add``) or a mask lifted (``lift``); every screen hears of it and redraws. */
  async function choose(body) {
    try { await api(`${base}/redactions`, { method: "POST", body }); }
    catch (err) { ctx.notice(`未能更改公开版：${err.message}`, true); }
  }

  async function protect(name, on) {
    const reason = on ? prompt(`为何保护 ${name}？（如：未成年人、被害人、受保护证人）`, "未成年人") : null;
    if (on && reason === null) return;
    const body = { name, protected: on, reason: reason || null };
    try { await api(`${base}/protection`, { method: "POST", body }); }
    catch (err) { ctx.notice(`未能更改：${err.message}`, true); }
  }

  return { show, choose, protect };
}
