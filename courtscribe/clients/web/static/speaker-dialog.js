// Who said a line (S on the clerk's screen): that line, or every line of a voice the diarizer found
// (说话人N) at once. A line still being spoken is not in the record yet, so her choice waits on the
// line and is written once its final is in (the store has a final before any screen hears of it).
import { ROLES, api, el } from "./common.js";

const VOICE = /^说话人\d+$/; // a voice the diarizer found and nobody has named yet
const $ = (id) => document.getElementById(id);

/**
 * ``ctx``: base (the hearing's API path), utterances (the screen's lines), participants,
 * render(uid), notice(text, sticky), changed(uid, utterance) (a line as the store answered it),
 * touch(uid) (a change made here: a slower backfill keeps it).
 */
export function speakerDialog(ctx) {
  const { base, utterances, participants } = ctx;
  const linePath = (uid) => `${base}/utterances/${encodeURIComponent(uid)}`;

  /** One line to a person: shown at once; written now, or when the store has the line. */
  async function assign(uid, body) {
    const entry = utterances.get(uid);
    if (!entry) return;
    entry.humanSpeaker = true;
    // a person said who it was: no longer the machine's guess (the record clears it too)
    const flags = (entry.u.flags || []).filter((f) => f !== "speaker_unsure");
    entry.u = { ...entry.u, ...body, flags };
    entry.pendingSpeaker = body;
    ctx.touch(uid);
    ctx.render(uid);
    await send(uid);
  }

  /** The choice waiting on ``uid``, to the store: once the line is there (not a partial). */
  async function send(uid) {
    const entry = utterances.get(uid);
    const body = entry && entry.pendingSpeaker;
    if (!body || entry.status === "partial") return;
    entry.pendingSpeaker = null; // sent once; waits again below if the store has no such line
    try {
      ctx.changed(uid, await api(linePath(uid), { method: "PATCH", body }));
    } catch (err) {
      const now = utterances.get(uid);
      if (!now) return;
      if (err.status === 404 || (err.status === 409 && err.code !== "locked")) {
        now.pendingSpeaker = body; // no such line in the store yet: sent when its final comes
        ctx.render(uid);
        return;
      }
      now.unsaved = err.message;
      ctx.render(uid);
      ctx.notice(`说话人未保存：${err.message}`, true);
    }
  }

  /** Every line of one voice to a person (and its next lines too); the banner offers the undo.
   * The line she opened the dialog on changes too: the store leaves out a line of that voice the
   * machine was unsure of, which she has now heard. */
  async function nameVoice(voice, uid, body) {
    const entry = utterances.get(uid);
    const channel = entry.u.channel;
    const path = `${base}/voices/${encodeURIComponent(voice)}`;
    const apply = (res) => res.utterances.forEach((u) => {
      const line = utterances.get(u.id);
      if (line) line.humanSpeaker = true;
      ctx.changed(u.id, u);
    });
    let res;
    try { res = await api(path, { method: "POST", body: { ...body, channel } }); }
    catch (err) { ctx.notice(`说话人未保存：${err.message}`, true); return; }
    apply(res);
    // a partial of the voice is named by its source as it finishes: nothing to add here
    const named = res.utterances.some((u) => u.id === uid);
    const also = !named && utterances.get(uid)?.status !== "partial";
    const lines = `${res.utterances.length} 行${also ? "及所选的这一行" : ""}`;
    ctx.notice(`${voice} 的 ${lines}已改为 ${body.speaker}`, true);
    const undo = el("button", { type: "button", id: "undo-voice" }, "撤销");
    undo.addEventListener("click", async () => {
      try {
        apply(await api(`${path}?channel=${channel}`, { method: "DELETE" }));
        ctx.notice(also ? `已撤销：${voice}（所选的这一行仍为 ${body.speaker}，可按 S 更改）` : `已撤销：${voice}`);
      } catch (err) { ctx.notice(`撤销未完成：${err.message}`, true); }
    });
    $("banner").append(" ", undo);
    if (also) await assign(uid, body); // last: should it fail, that is what the banner says
  }

  /** The dialog for line ``uid``: a participant, and for a voice's line whether all its lines. */
  function choose(uid) {
    const choice = $("speaker-choice");
    choice.replaceChildren(...participants.map((p, i) =>
      el("option", { value: i }, `${ROLES[p.role]}${p.name ? " " + p.name : ""}`)));
    const speaker = utterances.get(uid).u.speaker || "";
    const voice = VOICE.test(speaker) ? speaker : null;
    $("speaker-voice-row").hidden = !voice;
    $("speaker-voice").checked = true;
    $("speaker-voice-label").textContent = voice || "";
    const dialog = $("speaker-dialog");
    dialog.onclose = async () => {
      if (dialog.returnValue !== "ok" || !participants.length || !utterances.has(uid)) return;
      const p = participants[Number(choice.value)];
      const body = { speaker: p.name ? `${ROLES[p.role]} ${p.name}` : ROLES[p.role], role: p.role,
                     participant: p.name };
      if (voice && $("speaker-voice").checked) await nameVoice(voice, uid, body);
      else await assign(uid, body);
    };
    dialog.returnValue = ""; // an Esc keeps the last value: not a choice
    dialog.showModal();
  }

  return { choose, send };
}
