// The hearing's participants on the clerk's screen: who is in the room (role, name, channel),
// each named one's protect button (public-version.js keeps it pressed or not), a participant
// added, and a voice enrolled from the selected line.
import { ROLES, api, el } from "./common.js";

const $ = (id) => document.getElementById(id);

/**
 * ``ctx``: base (the hearing's API path), participants (the page's list, which the speaker
 * dialog reads too), utterances (the screen's lines), selected() (the page's), protect(name, on),
 * notice(text, sticky).
 */
export function participantsPanel(ctx) {
  const { base, participants, utterances } = ctx;

  function add(p) {
    participants.push(p);
    const toggle = p.name ? el("button", { type: "button", class: "protect", "data-name": p.name,
      "aria-pressed": "false", title: "受保护：姓名在直播字幕和公开版中隐去（张某）" }, "保护") : null;
    toggle?.addEventListener("click",
      () => ctx.protect(p.name, toggle.getAttribute("aria-pressed") !== "true"));
    const channel = p.channel !== null && p.channel !== undefined
      ? el("small", {}, ` 通道 ${p.channel}`) : null;
    $("participants").append(
      el("li", {}, `${ROLES[p.role] || p.role}${p.name ? " " + p.name : ""}`, channel, toggle));
  }

  /** Before the record's participants are drawn again (a backfill). */
  function clear() {
    participants.length = 0;
    $("participants").replaceChildren();
  }

  /** The add-participant form was sent; every screen hears of the new one and draws it. */
  async function submit(ev) {
    ev.preventDefault();
    const f = ev.target;
    const body = { role: f.role.value, name: f.name.value || null,
                   channel: f.channel.value === "" ? null : Number(f.channel.value),
                   protected: f.protected.checked };
    try { await api(`${base}/participants`, { method: "POST", body }); f.reset(); }
    catch (err) { ctx.notice(err.message, true); }
  }

  /** The selected line's audio as the voice of its speaker (asked for when no one is named). */
  async function enroll() {
    const uid = ctx.selected();
    const entry = uid && utterances.get(uid);
    const name = entry && (entry.u.participant || prompt("登记谁的声纹？（姓名）"));
    if (!name) return;
    try {
      const body = { channel: entry.u.channel, from_ms: entry.u.start_ms, to_ms: entry.u.end_ms };
      await api(`${base}/participants/${encodeURIComponent(name)}/voice`, { method: "POST", body });
      ctx.notice(`已登记 ${name} 的声纹`);
    } catch (err) { ctx.notice(`声纹登记失败：${err.message}`, true); }
  }

  return { add, clear, submit, enroll };
}
