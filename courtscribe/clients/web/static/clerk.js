// The clerk's live screen (书记员): the hearing's lines as they are spoken, corrected in place.
// State is one map of lines keyed by utterance id; every source (live partials and finals, other
// screens' edits, the backfill after a reconnect) is applied to it the same idempotent way, so a
// line can never appear twice and a human edit is never overwritten by machine text.
import { ROLES, api, clock, download, el, liveSocket, params } from "./common.js";
import { textNodes, unrecognized, who } from "./line-text.js";
import { speakerDialog } from "./speaker-dialog.js";
import { channel, channelStatus, knownChannels } from "./channels.js";
import { connectionDown, connectionUp, failed, notice } from "./banner.js";
import { replayer, stopHighlight } from "./replay.js";
import { lineEditor } from "./line-editor.js";
import { signing } from "./sign-off.js";
import { publicVersion } from "./public-version.js";
import { hotwords } from "./hotwords.js";
import { participantsPanel } from "./participants.js";
import { interruptions } from "./interruptions.js";

const hearingId = params.get("hearing");
const base = `/v1/hearings/${encodeURIComponent(hearingId)}`;
const $ = (id) => document.getElementById(id);

// uid → {u: utterance, status: partial|final|edited|confirmed, humanSpeaker, and while they hold:
// unsaved (why her save failed), base, pendingSpeaker (her choice waiting on the line's final)}
const utterances = new Map();
const unstored = new Map(); // uid → why the store did not write its final (on this screen only)
// every change to a line, here or live, takes the next tick: a backfill whose record was fetched
// before a line's tick leaves that line as it is (its snapshot is older than the screen)
let tick = 0;
const touched = new Map(); // uid → tick of its last change
const touch = (uid) => touched.set(uid, ++tick);
const participants = [];
let status = "scheduled";
let selected = null;

// -- rendering ---------------------------------------------------------------------------------
function render(uid) {
  const entry = utterances.get(uid);
  let li = document.querySelector(`li[data-uid="${CSS.escape(uid)}"]`);
  if (!entry) {
    li && li.remove();
    editor.lineGone(uid);
    if (selected === uid) selected = null;
    return;
  }
  const { u, status: st } = entry;
  // a piece of a long utterance goes on from the line before it (its speaker kept talking)
  const goesOn = (u.flags || []).includes("continues") ? " continues" : "";
  const fresh = el("li", { class: `line ${st}${unrecognized(u) ? " unrecognized" : ""}${goesOn}`, dataset: { uid, start: u.start_ms, channel: u.channel } },
    // the keys act on the list: a button keeping the focus would take her Enter as another replay
    el("button", { class: "time", type: "button", title: "回放这一行", onclick: () => {
      replay(uid);
      $("lines").focus({ preventScroll: true });
    } }, clock(u.start_ms)),
    el("span", { class: "who", onclick: () => { select(uid); chooseSpeaker(); } }, who(u)),
    el("span", { class: "text" }, ...textNodes(u, st, unstored.get(uid))));
  if (uid === selected) fresh.classList.add("selected");
  if (unstored.has(uid)) fresh.classList.add("unstored");
  if (entry.pendingSpeaker) { // her choice of speaker waits for the line to be in the record
    fresh.classList.add("pending");
    fresh.title = `说话人 ${entry.pendingSpeaker.speaker} 将在这一行识别完成后存入笔录`;
  }
  if (entry.unsaved) { // her correction did not reach the record: shown so until it does
    fresh.classList.add("failed");
    fresh.title = `修改未保存（${entry.unsaved}）：按 Enter 再改一次以重试`;
  }
  if (li) {
    if (li.classList.contains("playing")) fresh.classList.add("playing");
    if (editor.editing() === uid) return; // the editor stays; the line is redrawn when editing ends
    li.replaceWith(fresh);
  } else {
    // keep hearing-time order: insert before the first line that starts later
    const later = [...$("lines").children].find((x) => Number(x.dataset.start) > u.start_ms);
    $("lines").insertBefore(fresh, later || null);
  }
  applySearch();
}

// -- applying events ---------------------------------------------------------------------------
/** A person's choice of speaker stands over a machine label that comes later (as in the record). */
function keepSpeaker(entry, u) {
  if (!entry || !entry.humanSpeaker) return u;
  return { ...u, speaker: entry.u.speaker, role: entry.u.role, participant: entry.u.participant,
           flags: (u.flags || []).filter((f) => f !== "speaker_unsure") };
}

function upsert(uid, u, st, { authoritative = false } = {}) {
  const entry = utterances.get(uid);
  touch(uid);
  if (entry && !authoritative) {
    if (entry.status === "edited" || entry.status === "confirmed") {
      // a person's text wins over any later machine text; times and tokens still come in. A final
      // after her correction of the partial that says otherwise is shown beside it (the store flags it)
      const late = st !== "partial" && entry.u.machine_text == null && u.text !== entry.u.text;
      const kept = keepSpeaker(entry, u);
      const flags = kept.flags || [];
      entry.u = { ...entry.u, ...kept, text: entry.u.text,
                 machine_text: st === "partial" ? entry.u.machine_text : u.text,
                 flags: late ? [...new Set([...flags, "final_after_edit"])] : flags };
      render(uid);
      return;
    }
    if (entry.status !== "partial" && st === "partial") return; // a late partial never replaces a final
  }
  utterances.set(uid, { u: keepSpeaker(entry, u), status: st,
                        humanSpeaker: !!(entry && entry.humanSpeaker),
                        pendingSpeaker: entry ? entry.pendingSpeaker : null });
  if (st === "partial") channel(u.channel, { voiceAt: Date.now() });
  render(uid);
}

const handlers = {
  partial(e) {
    upsert(e.utterance_id, { id: e.utterance_id, channel: e.channel, speaker: e.speaker, role: e.role,
                             start_ms: e.start_ms, end_ms: e.end_ms, text: e.text, tokens: [], stable: e.stable,
                             flags: e.continues ? ["continues"] : [] }, "partial");
  },
  final(e) {
    const uid = e.utterance_id;
    const entry = utterances.get(uid);
    if (!e.utterance.text && !unrecognized(e.utterance) && !(entry && entry.status === "edited")) {
      // she is typing what was said: her words may be the record's
      if (entry && editor.editing() === uid) {
        entry.u = { ...entry.u, start_ms: e.utterance.start_ms, end_ms: e.utterance.end_ms };
        entry.heldEmpty = true; // Esc drops the line; Enter saves her text as this stretch's line
        touch(uid);
        notice("识别结果为空：您正在修改的这一行仍保留。Enter 将您的文字存为这一段的笔录，Esc 放弃", true);
        return;
      }
      utterances.delete(uid); // the stretch held no words (a click, a neighbour's bleed)
      touch(uid);
      render(uid);
      return;
    }
    upsert(uid, e.utterance, e.utterance.status || "final");
    speakers.send(uid); // a speaker she chose while it was a partial: the store has the line now
  },
  utterance_changed(e) { // the store's view of a line a person changed (here or on another screen)
    const uid = e.utterance_id;
    const was = utterances.get(uid);
    const human = e.utterance.status === "edited" || e.utterance.status === "confirmed";
    const pending = was ? was.pendingSpeaker : null;
    unstored.delete(uid); // the store has it
    utterances.set(uid, { u: pending ? { ...e.utterance, ...pending } : e.utterance,
                          status: e.utterance.status, pendingSpeaker: pending,
                          humanSpeaker: human || !!(was && was.humanSpeaker) });
    touch(uid);
    render(uid);
    if (pending) speakers.send(uid);
  },
  utterance_removed(e) { // merged into another line, here or on another screen
    const was = selected === e.utterance_id;
    utterances.delete(e.utterance_id);
    touch(e.utterance_id);
    render(e.utterance_id);
    if (was) select(e.merged_into);
  },
  speaker_update(e) { // the label the record holds after a machine relabel (a person's label is kept there)
    const entry = utterances.get(e.utterance_id);
    if (!entry) return;
    entry.u = { ...entry.u, speaker: e.speaker, role: e.role, participant: e.participant };
    touch(e.utterance_id);
    render(e.utterance_id);
  },
  status(e) { setStatus(e.status); },
  level(e) {
    channel(e.channel, { speaker: e.speaker, connected: true, rms: e.rms_db, peak: e.peak_db,
                         ...(e.speech ? { voiceAt: Date.now() } : {}) });
  },
  channel(e) { channel(e.channel, { speaker: e.speaker, connected: e.connected, ...(e.connected ? {} : { rms: -90 }) }); },
  participant(e) { people.add(e.participant); },
  redaction() { publicView.show(); },
  hotwords(e) { vocabulary.show(e); },
  interruption(e) { pauses.add(e.interruption); },
  captions(e) { $("captions-state").hidden = !e.blanked; $("blank").textContent = e.blanked ? "恢复字幕" : "屏蔽字幕"; },
  subscribed(e) { if ("blanked" in e) handlers.captions(e); }, // (re)connected: the captions as the court ordered now
  store_recovered() { backfill(); },
  error(e) {
    const uid = e.utterance_id;
    if (uid && e.code === "store_error") { // its final is on this screen only, marked so till saved
      unstored.set(uid, e.message);
      if (utterances.has(uid)) render(uid); // else its final, which follows, is drawn marked
      const start = e.start_ms ?? utterances.get(uid)?.u.start_ms;
      const at = start === null || start === undefined ? "" : ` ${clock(start)}`;
      notice(`这一行${at}未能存入笔录（${e.message}）：已标为“未存入笔录”，`
             + "核对后按 Enter 保存，补入笔录", true);
      return;
    }
    if (uid && utterances.has(uid)) {
      document.querySelector(`li[data-uid="${CSS.escape(uid)}"]`)?.classList.add("failed");
    }
    notice(`${e.code}: ${e.message}`, true);
  },
};

async function backfill() {
  const since = tick; // a line changed after this is newer on screen than in the record fetched now
  const record = await api(base);
  const older = (uid) => (touched.get(uid) ?? 0) > since; // the record is older than the screen
  const held = new Map(record.utterances.map((u) => [u.id, u]));
  for (const [uid, entry] of utterances) { // merged away while this screen was not listening: inside a stored line
    if (entry.status !== "partial" && !held.has(uid) && !older(uid)
        && record.utterances.some((u) => u.channel === entry.u.channel && u.start_ms <= entry.u.start_ms && u.end_ms >= entry.u.end_ms)) {
      handlers.utterance_removed({ utterance_id: uid });
    }
  }
  // a partial whose final came (or held no words) while this screen was not listening: the record
  // has gone past it on its channel, or the hearing is no longer open
  const reached = new Map();
  for (const u of record.utterances) reached.set(u.channel, Math.max(reached.get(u.channel) ?? 0, u.end_ms));
  for (const [uid, entry] of utterances) {
    if (entry.status === "partial" && !held.has(uid) && uid !== editor.editing() && !older(uid)
        && (status === "closed" || status === "signed" || entry.u.end_ms <= (reached.get(entry.u.channel) ?? -1))) {
      utterances.delete(uid);
      render(uid);
      if (entry.pendingSpeaker) {
        notice(`${clock(entry.u.start_ms)} 的一行没有识别结果：为它选的说话人未存入笔录`, true);
      }
    }
  }
  const h = record.hearing;
  $("title").textContent = h.title || h.case_number || h.id;
  // which hearing this screen (and the courtroom's audio) is in, as the clerk checks it
  $("case").textContent = [h.case_number && `案号 ${h.case_number}`, h.cause && `案由 ${h.cause}`, `编号 ${h.id}`]
    .filter(Boolean).join(" · ");
  for (const u of record.utterances) {
    const entry = utterances.get(u.id);
    if (older(u.id)) continue; // changed live while the record was on its way: the screen is newer
    // the store is the truth for every line it has; a local edit still being saved keeps its text
    if (!entry || entry.status !== "edited" || u.status === "edited") {
      const pending = entry ? entry.pendingSpeaker : null; // her choice waited on this line
      unstored.delete(u.id);
      const humanSpeaker = !!(entry && entry.humanSpeaker);
      utterances.set(u.id, { u: pending ? { ...u, ...pending } : u, status: u.status, humanSpeaker,
                             pendingSpeaker: pending });
      render(u.id);
      if (pending) speakers.send(u.id);
    }
  }
  people.clear();
  record.participants.forEach(people.add);
  await publicView.show();
  pauses.clear();
  record.interruptions.forEach(pauses.add);
  const now = await api(`${base}/status`);
  setStatus(now.status);
  for (const ch of knownChannels()) {
    if (!(now.sources || []).some((x) => x.channel === ch)) channel(ch, { connected: false });
  }
  for (const x of now.sources || []) channel(x.channel, { speaker: x.speaker, connected: true });
  try { vocabulary.show(await api(`${base}/hotwords`)); } catch { /* an older server: no vocabulary endpoint */ }
}

// -- the hearing's stage --------------------------------------------------------------------------
const STATUS = { scheduled: "未开庭", open: "庭审中", closed: "已闭庭", signed: "已签名 · 已锁定" };

const STAGES = ["scheduled", "open", "closed", "signed"]; // a hearing only goes forward

function setStatus(s) {
  // a slow fetch begun before 闭庭 (a reconnect's backfill) must not take the screen back to "open"
  if (STAGES.indexOf(s) < STAGES.indexOf(status)) return;
  status = s;
  $("status").textContent = STATUS[s] || s;
  document.body.classList.toggle("locked", s === "signed");
  for (const id of ["pause", "enroll"]) $(id).disabled = s === "signed" || (id === "enroll" && !selected);
  // a signed record takes no more participants or hotwords; the remaining signatures still come
  for (const form of ["add-participant", "add-hotword"]) {
    for (const input of $(form).elements) input.disabled = s === "signed";
  }
  $("sign").textContent = s === "closed" || s === "signed" ? "签名" : "闭庭";
  signOff.showSigners().catch((err) => failed("签名情况未能读取：", err));
}

// the parts of the page that hold their own state: each is given what it needs of this one
const changed = (uid, u) => handlers.utterance_changed({ utterance_id: uid, utterance: u });
const signOff = signing({
  base, utterances, status: () => status, setStatus, select, backfill, notice,
});
const editor = lineEditor({
  base, utterances, unstored, render, touch, notice, select, changed,
  selected: () => selected, status: () => status,
  removed: (uid, into) => handlers.utterance_removed({ utterance_id: uid, merged_into: into }),
  forgetReadBack: signOff.forgetReadBack,
});
const replay = replayer({ base, select, notice });
const publicView = publicVersion({ base, utterances, notice });
const vocabulary = hotwords({ base, notice });
const people = participantsPanel({
  base, participants, utterances, notice, selected: () => selected, protect: publicView.protect,
});
const pauses = interruptions({ base, utterances, notice });

// -- selection ------------------------------------------------------------------------------------
function select(uid) {
  document.querySelector("li.selected")?.classList.remove("selected");
  selected = uid;
  const li = uid && document.querySelector(`li[data-uid="${CSS.escape(uid)}"]`);
  if (li) {
    li.classList.add("selected");
    li.scrollIntoView({ block: "nearest" });
  }
  $("enroll").disabled = !uid || status === "signed";
}

/** The next line shown (a search hides the rest) above or below the selected one, even when the
 * selected one is itself hidden now; with none selected, the first or last shown. */
function move(step) {
  const all = [...$("lines").children];
  const at = all.findIndex((li) => li.dataset.uid === selected);
  const from = at < 0 ? (step > 0 ? -1 : all.length) : at;
  for (let i = from + step; i >= 0 && i < all.length; i += step) {
    if (!all[i].hidden) { select(all[i].dataset.uid); return; }
  }
}

// S: who said the selected line (speaker-dialog.js); a choice made on a partial waits for its final
const speakers = speakerDialog({ base, utterances, participants, render, notice, touch, changed });

function chooseSpeaker() {
  if (!selected || status === "signed" || !utterances.has(selected)) return;
  speakers.choose(selected);
}

// -- search, exports ------------------------------------------------------------------------------
/** Only the lines whose words hold the search (not their times, speakers or notes); the line she
 * is editing stays, whatever she types. */
function applySearch() {
  const q = $("search").value.trim();
  let hits = 0;
  for (const li of $("lines").children) {
    const entry = utterances.get(li.dataset.uid);
    const match = !q || (entry ? entry.u.text || "" : li.textContent).includes(q);
    li.hidden = !match && li.dataset.uid !== editor.editing();
    hits += match && q ? 1 : 0;
  }
  $("hits").textContent = q ? `${hits} 处` : "";
}

/** One button per printed form the server writes (its writer registry, GET /v1/formats). */
async function exportButtons() {
  const { formats } = await api("/v1/formats");
  $("exports").replaceChildren(...formats.filter((f) => f.on_page).map((f) => {
    const b = el("button", { class: "export", type: "button", dataset: { format: f.format } }, f.label);
    b.addEventListener("click", () => download(`${base}/export?format=${f.format}`).catch((err) => notice(err.message, true)));
    return b;
  }));
}

// -- wiring -------------------------------------------------------------------------------------
function keys(ev) {
  if (editor.editing() || ev.target.closest("input, textarea, select, dialog")) return;
  const k = ev.key;
  if ((k === "Enter" || k === " ") && ev.target.closest("button, a, [role=button]")) return; // they press it
  if (k === "ArrowDown") { ev.preventDefault(); move(1); }
  else if (k === "ArrowUp") { ev.preventDefault(); move(-1); }
  else if (k === "Enter") { ev.preventDefault(); editor.start(); }
  else if (k === "s" || k === "S") { ev.preventDefault(); chooseSpeaker(); }
  else if (k === "m" || k === "M") { ev.preventDefault(); editor.mergeNext(); }
  else if (k === "c" || k === "C") { ev.preventDefault(); editor.confirm(); }
  else if (k === " " && selected) { ev.preventDefault(); replay(selected); }
  else if (k === "/") { ev.preventDefault(); $("search").focus(); }
}

function main() {
  if (!hearingId) {
    notice("请在地址中指定庭审：/ui/clerk?hearing=…", true);
    return;
  }
  document.addEventListener("keydown", keys);
  $("lines").addEventListener("click", (ev) => { const li = ev.target.closest("li"); if (li) select(li.dataset.uid); });
  $("search").addEventListener("input", applySearch);
  $("readback").addEventListener("click", () => {
    const on = document.body.classList.toggle("readback");
    if (on) { // every line is read back, not a search's hits; what is signed is the record as read back now
      $("search").value = "";
      applySearch();
      signOff.beginReadBack();
    }
    $("readback").setAttribute("aria-pressed", String(on));
    $("readback").textContent = on ? "返回编辑" : "核对朗读";
  });
  if (params.get("readback")) $("readback").click(); // opened as the read-back view (from the front page)
  $("sign").addEventListener("click", signOff.signOff);
  $("pause").addEventListener("click", pauses.pauseOrResume);
  $("blank").addEventListener("click", async () => {
    const on = $("captions-state").hidden;
    try { await api(`${base}/captions/switch`, { method: "POST", body: { blanked: on, reason: on ? "不公开内容" : null } }); }
    catch (err) { notice(err.message, true); }
  });
  exportButtons().catch((err) => failed("导出格式未能读取：", err));
  $("add-participant").role.replaceChildren(...Object.entries(ROLES).map(([id, label]) => el("option", { value: id }, label)));
  $("add-participant").addEventListener("submit", people.submit);
  $("add-redaction").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = ev.target.text.value.trim();
    if (text) await publicView.choose({ action: "add", text, reason: "书记员隐去" });
    ev.target.reset();
  });
  $("public-export").addEventListener("click", () =>
    download(`${base}/export?format=pdf&version=public`).catch((err) => notice(err.message, true)));
  $("add-hotword").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const word = ev.target.word.value.trim();
    await vocabulary.add(word);
    ev.target.reset();
  });
  $("enroll").addEventListener("click", people.enroll);
  const player = $("player");
  player.addEventListener("ended", stopHighlight);
  player.addEventListener("pause", stopHighlight);
  setInterval(channelStatus, 1000);
  liveSocket(`${base}/events`, {
    onEvent: (e) => (handlers[e.type] || (() => {}))(e),
    onOpen: () => backfill().then(connectionUp).catch((err) => failed("", err)),
    onState: (s, e) => { if (s === "down") connectionDown(e); },
  });
}

main();