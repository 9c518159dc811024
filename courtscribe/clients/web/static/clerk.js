// The clerk's live screen (书记员): the hearing's lines as they are spoken, corrected in place.
// State is one map of lines keyed by utterance id; every source (live partials and finals, other
// screens' edits, the backfill after a reconnect) is applied to it the same idempotent way, so a
// line can never appear twice and a human edit is never overwritten by machine text.
import { ApiError, ROLES, api, clock, download, el, liveSocket, params, refusal } from "./common.js";
import { textNodes, tokenSpans, unrecognized, who } from "./line-text.js";
import { speakerDialog } from "./speaker-dialog.js";
import { channel, channelStatus, knownChannels } from "./channels.js";

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
let editing = null;
let editBase = null; // the line's text when her correction began (entries are replaced as events come)

// -- rendering ---------------------------------------------------------------------------------
function render(uid) {
  const entry = utterances.get(uid);
  let li = document.querySelector(`li[data-uid="${CSS.escape(uid)}"]`);
  if (!entry) {
    li && li.remove();
    if (editing === uid) { // the line she was editing is gone (merged on another screen, no words in it)
      editing = null;
      $("lines").focus();
      notice("正在修改的这一行已被合并或删除，修改未保存", true);
    }
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
    if (editing === uid) return; // the editor stays; the line is redrawn when editing ends
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
      if (entry && editing === uid) { // she is typing what was said: her words may be the record's
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
  participant(e) { addParticipant(e.participant); },
  redaction() { showPublicVersion(); },
  hotwords(e) { showHotwords(e); },
  interruption(e) { addInterruption(e.interruption); },
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
    if (entry.status === "partial" && !held.has(uid) && uid !== editing && !older(uid)
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
  participants.length = 0;
  $("participants").replaceChildren();
  record.participants.forEach(addParticipant);
  await showPublicVersion();
  $("interruptions").replaceChildren();
  record.interruptions.forEach(addInterruption);
  const now = await api(`${base}/status`);
  setStatus(now.status);
  for (const ch of knownChannels()) {
    if (!(now.sources || []).some((x) => x.channel === ch)) channel(ch, { connected: false });
  }
  for (const x of now.sources || []) channel(x.channel, { speaker: x.speaker, connected: true });
  try { showHotwords(await api(`${base}/hotwords`)); } catch { /* an older server: no vocabulary endpoint */ }
}

// The hearing's own hotwords can be removed (×); parties' and participants' names come with them.
let ownHotwords = [];
function showHotwords(v) {
  if (v.hotwords) ownHotwords = v.hotwords;
  $("hotwords").replaceChildren(...v.words.map((w) => ownHotwords.includes(w)
    ? el("li", { class: "own" }, w, el("button", { type: "button", title: "删除热词", "aria-label": `删除热词 ${w}`,
      onclick: () => saveHotwords(ownHotwords.filter((x) => x !== w)) }, "×"))
    : el("li", {}, w)));
}
async function saveHotwords(words) {
  try { showHotwords(await api(`${base}/hotwords`, { method: "PUT", body: { words } })); }
  catch (err) { notice(err.message, true); }
}

// -- status, participants, interruptions --------------------------------------------------------
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
  showSigners().catch((err) => failed("签名情况未能读取：", err));
}

// -- signatures: every required signer, in any order; the first locks the text -----------------
let me = null; // GET /v1/whoami: signs_as null when tokens are off
const SIGN_STATE = { signed: "已签名", pending: "待签名", refused: "拒绝签名" };

async function showSigners() {
  if (!me) me = await api("/v1/whoami").catch(() => ({ signs_as: null, may: [] }));
  const { signers, complete } = await api(`${base}/signatures`);
  const readBack = status === "closed" || status === "signed";
  $("signers").replaceChildren(...signers.map((x) => {
    const when = x.at ? ` ${new Date(x.at).toLocaleTimeString("zh-CN", { hour12: false })}` : "";
    const li = el("li", { class: x.state, dataset: { role: x.role } }, `${x.role_label}${x.name ? " " + x.name : ""}`,
      el("small", {}, ` ${SIGN_STATE[x.state]}${when}${x.reason ? "：" + x.reason : ""}`));
    if (x.party && x.state === "pending" && readBack && me.may.includes("edit") && x.name) {
      li.append(el("button", { type: "button", class: "party-signed", onclick: () => noteParty(x, false) }, "已签"),
        el("button", { type: "button", class: "party-refused", onclick: () => noteParty(x, true) }, "拒签"));
    }
    return li;
  }));
  // the token's holder signs once; without tokens anyone signs until no one is pending
  const mine = me.signs_as ? signers.some((x) => x.state === "signed" && x.name === me.name && me.signs_as.includes(x.role))
    : complete;
  $("sign").disabled = status === "signed" ? mine || (me.signs_as !== null && !me.signs_as.length) : false;
}

async function noteParty(x, refused) {
  const reason = refused ? window.prompt(`${x.role_label} ${x.name} 拒绝签名的情况`) : null;
  if (refused && !reason) return;
  try {
    await api(`${base}/party-signatures`, { method: "POST", body: { name: x.name, role: x.role, refused, reason } });
    await showSigners();
  } catch (err) { notice(`未记下：${err.message}`, true); }
}

function addParticipant(p) {
  participants.push(p);
  const toggle = p.name ? el("button", { type: "button", class: "protect", "data-name": p.name,
    "aria-pressed": "false", title: "受保护：姓名在直播字幕和公开版中隐去（张某）" }, "保护") : null;
  toggle?.addEventListener("click", () => protect(p.name, toggle.getAttribute("aria-pressed") !== "true"));
  $("participants").append(el("li", {}, `${ROLES[p.role] || p.role}${p.name ? " " + p.name : ""}`,
    p.channel !== null && p.channel !== undefined ? el("small", {}, ` 通道 ${p.channel}`) : null, toggle));
}

// The public version: who is protected (minors, victims, protected witnesses), and every mask it
// makes, each of which the clerk may lift; the record itself never changes.
const HIDDEN = { id_card: "身份证号", mobile: "手机号", landline: "电话", bank_card: "银行卡号", number: "号码",
  plate: "车牌", email: "邮箱", address: "住址", name: "姓名", clerk: "书记员隐去" };

async function showPublicVersion() {
  let got;
  try { got = await api(`${base}/redactions`); } catch { return; /* an older server, or no right to read */ }
  for (const b of document.querySelectorAll("#participants .protect")) {
    const on = got.protected.includes(b.dataset.name);
    b.setAttribute("aria-pressed", String(on));
    b.textContent = on ? "受保护" : "保护";
  }
  $("redactions").replaceChildren(...got.log.map((r) => {
    const line = r.utterance_id && utterances.get(r.utterance_id);
    const lift = el("button", { type: "button", class: "lift", title: "公开版中不隐去这一处" }, "不隐去");
    lift.addEventListener("click", () => choose({ action: "lift", text: r.words, utterance_id: r.utterance_id }));
    return el("li", {}, line ? el("small", {}, `${clock(line.u.start_ms)} `) : null,
      `${HIDDEN[r.category] || r.category}：${r.words} → ${r.replacement}`, r.category === "clerk" ? null : lift);
  }));
}

async function choose(body) {
  try { await api(`${base}/redactions`, { method: "POST", body }); }
  catch (err) { notice(`未能更改公开版：${err.message}`, true); }
}

async function protect(name, on) {
  const reason = on ? prompt(`为何保护 ${name}？（如：未成年人、被害人、受保护证人）`, "未成年人") : null;
  if (on && reason === null) return;
  try { await api(`${base}/protection`, { method: "POST", body: { name, protected: on, reason: reason || null } }); }
  catch (err) { notice(`未能更改：${err.message}`, true); }
}

function addInterruption(i) {
  $("interruptions").append(el("li", {}, `${clock(i.at_ms)} ${i.kind === "paused" ? "休庭" : "继续开庭"}：${i.reason}`));
  $("pause").textContent = i.kind === "paused" ? "继续开庭" : "休庭";
  $("pause").dataset.kind = i.kind === "paused" ? "resumed" : "paused";
}

/** The token was turned away: say so (not the server's words), and offer nothing that cannot work. */
function refuse(status) {
  const b = $("banner");
  b.textContent = refusal(status);
  b.hidden = false;
  b.dataset.sticky = "refused";
  document.body.classList.add("refused");
  for (const c of document.querySelectorAll("button, input, select, textarea")) c.disabled = true;
}

/** An API call failed: a refused token is said as such, anything else as ``what``: the reason. */
function failed(what, err) {
  if (err instanceof ApiError && (err.status === 401 || err.status === 403)) refuse(err.status);
  else notice(`${what}${err.message}`, true);
}

let notices = 0; // a toast hides itself only if nothing was said after it

/** Say ``text`` in the banner: ``sticky``, until she dismisses it (×) or something else is said. */
function notice(text, sticky = false) {
  if (document.body.classList.contains("refused")) return; // the refusal stays what the clerk reads
  const b = $("banner");
  const shown = ++notices;
  b.replaceChildren(text);
  b.hidden = false;
  b.dataset.sticky = sticky ? "1" : "";
  if (sticky) {
    b.append(el("button", { type: "button", class: "dismiss", title: "关闭提示", "aria-label": "关闭提示",
                            onclick: () => { b.hidden = true; b.dataset.sticky = ""; } }, "×"));
  } else setTimeout(() => { if (shown === notices && !b.dataset.sticky) b.hidden = true; }, 6000);
}

// -- selection and editing ----------------------------------------------------------------------
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

/** ``text``: hers to go on with (a save refused because the line changed while she typed). */
function startEdit(text) {
  if (!selected || status === "signed") return;
  const entry = utterances.get(selected);
  const li = document.querySelector(`li[data-uid="${CSS.escape(selected)}"]`);
  if (!entry || !li) return;
  editing = selected;
  // what she corrects: the server refuses a save over a line that changed meanwhile (a failed save's
  // text on the line is hers, not the record's: it keeps the text that save began from)
  editBase = entry.unsaved ? entry.base : entry.u.text;
  const box = el("textarea", { class: "editor", rows: 2, "aria-label": "修改这一行" });
  box.value = text ?? entry.u.text;
  li.querySelector(".text").replaceWith(box);
  box.focus();
  box.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.ctrlKey) { ev.preventDefault(); saveEdit(box.value); }
    else if (ev.key === "Escape") { ev.preventDefault(); endEdit(); }
    else if (ev.key === "Tab") { ev.preventDefault(); nextLowWord(box, entry.u); }
    else if (ev.key === "Enter" && ev.ctrlKey) { ev.preventDefault(); splitHere(box); }
  });
}

function nextLowWord(box, u) {
  // select the next low-confidence token after the caret, wrapping to the start
  const spans = tokenSpans(box.value, u.tokens).filter(([, , low]) => low);
  const from = box.selectionEnd > box.selectionStart ? box.selectionStart + 1 : box.selectionStart; // past a selected word
  const next = spans.find(([a]) => a >= from) || spans[0];
  if (next) box.setSelectionRange(next[0], next[1]);
}

function endEdit() {
  const uid = editing;
  editing = null;
  const entry = utterances.get(uid);
  if (entry && entry.heldEmpty && entry.status === "partial") { // no words came, and she drops it
    utterances.delete(uid);
    touch(uid);
  }
  render(uid);
  $("lines").focus();
}

async function saveEdit(text) {
  const uid = editing;
  const entry = utterances.get(uid);
  // the edit shows at once and is saved in the background; a final arriving meanwhile keeps it
  entry.u = { ...entry.u, text };
  // a line the store has not got (a partial; a final it failed to write) goes in with its place and
  // speaker, her choice of speaker included
  const place = entry.status === "partial" || unstored.has(uid) || entry.unplaced;
  entry.status = "edited";
  touch(uid);
  endEdit();
  entry.base = editBase; // kept on the line should this save fail
  const body = { text, base: editBase };
  const pending = entry.pendingSpeaker;
  if (place) {
    const { channel: ch, start_ms, end_ms, speaker, role, participant } = entry.u;
    Object.assign(body, { channel: ch, start_ms, end_ms, speaker, role, participant });
    entry.pendingSpeaker = null; // sent with the text
  }
  try {
    handlers.utterance_changed({ utterance_id: uid, utterance: await api(`${base}/utterances/${encodeURIComponent(uid)}`, { method: "PATCH", body }) });
    return true;
  } catch (err) {
    const now = utterances.get(uid) || entry;
    if (place) { now.unplaced = true; now.pendingSpeaker = pending; }
    if (err.code === "changed_meanwhile") return changedMeanwhile(uid, text);
    // the line says so (and sign-off sees it differs) until a save succeeds
    now.unsaved = err.message;
    render(uid);
    notice(`修改未保存：${err.message}`, true);
    return false;
  }
}

/** C: she has checked the line as it reads, who said it too; its warnings are answered. */
async function confirmLine() {
  if (!selected || status === "signed") return;
  const uid = selected;
  const entry = utterances.get(uid);
  if (!entry) return;
  if (entry.status === "partial" || unstored.has(uid)) {
    notice("这一行还不在笔录中：识别完成（或按 Enter 保存）后再确认", true);
    return;
  }
  try {
    const u = await api(`${base}/utterances/${enc(uid)}/confirm`, { method: "POST" });
    handlers.utterance_changed({ utterance_id: uid, utterance: u });
    if (status === "closed" && readBack) { // what was read back is not the record any more
      readBack = null;
      notice("已确认这一行。笔录已有变更：请重新“核对朗读”后再签名", true);
    } else notice("已确认这一行");
  } catch (err) { notice(`确认未完成：${err.message}`, true); }
}

/** Her save met a line that changed while she typed (its final came in, another screen corrected
 * it): the line shows what the record holds now, and her text goes back into the editor to compare,
 * keep (Enter) or drop (Esc). Nothing is written over words she has not seen. */
async function changedMeanwhile(uid, mine) {
  try {
    handlers.utterance_changed({ utterance_id: uid, utterance: await api(`${base}/utterances/${enc(uid)}`) });
  } catch (err) { notice(`修改未保存，这一行也未能重新读取：${err.message}`, true); return false; }
  const now = utterances.get(uid).u.text;
  if (editing === null && status !== "signed") {
    select(uid);
    startEdit(mine);
    notice(`这一行在您修改时已变为「${now}」，您的修改未保存：仍在编辑框中，Enter 保存，Esc 放弃`, true);
  } else notice(`这一行在您修改时已变为「${now}」，您的修改「${mine}」未保存`, true);
  return false;
}

// Split at the caret (Ctrl+Enter while editing) and merge with the next line (M): for sentences or
// speakers the VAD ran together or cut apart. Only lines whose final is in; the server cuts the time
// at the engine's word times and says so to every screen.
const enc = encodeURIComponent;

async function splitHere(box) {
  const uid = editing;
  const entry = utterances.get(uid);
  if (entry.status === "partial") { notice("这一行还在识别中，识别完成后再拆分", true); return; }
  const at = [...box.value.slice(0, box.selectionStart)].length; // characters, as the server counts them
  if (box.value !== entry.u.text) {
    if (!(await saveEdit(box.value))) return; // cut the record's text, never her unsaved one
  } else endEdit();
  try {
    const res = await api(`${base}/utterances/${enc(uid)}/split`, { method: "POST", body: { at } });
    res.utterances.forEach((u) => handlers.utterance_changed({ utterance_id: u.id, utterance: u }));
    select(res.utterances[1].id);
  } catch (err) { notice(`拆分未完成：${err.message}`, true); }
}

async function mergeNext() {
  if (!selected || status === "signed") return;
  // the next line of the same channel, searched or not: merging joins a sentence cut at a pause
  const all = [...$("lines").children];
  const at = all.findIndex((li) => li.dataset.uid === selected);
  const next = at < 0 ? null : all.slice(at + 1).find((li) => li.dataset.channel === all[at].dataset.channel);
  if (!next) { notice("下面没有可以合并的行"); return; }
  try {
    const res = await api(`${base}/utterances/${enc(selected)}/merge`, { method: "POST", body: { other: next.dataset.uid } });
    handlers.utterance_removed({ utterance_id: res.removed, merged_into: res.utterance.id });
    handlers.utterance_changed({ utterance_id: res.utterance.id, utterance: res.utterance });
    select(res.utterance.id);
  } catch (err) { notice(`合并未完成：${err.message}`, true); }
}

// S: who said the selected line (speaker-dialog.js); a choice made on a partial waits for its final
const speakers = speakerDialog({
  base, utterances, participants, render, notice, touch,
  changed: (uid, u) => handlers.utterance_changed({ utterance_id: uid, utterance: u }),
});

function chooseSpeaker() {
  if (!selected || status === "signed" || !utterances.has(selected)) return;
  speakers.choose(selected);
}

// -- replay -------------------------------------------------------------------------------------
let replaying = 0; // the newest replay asked for: an older one's audio never plays over it

async function replay(uid) {
  select(uid);
  const ask = ++replaying;
  const player = $("player");
  try {
    const res = await api(`${base}/utterances/${encodeURIComponent(uid)}/audio`, { raw: true });
    const offset = Number(res.headers.get("X-Utterance-Offset-Ms") || 0) / 1000;
    const cut = res.headers.get("X-Audio-Truncated-At-Ms");
    const blob = await res.blob();
    if (ask !== replaying) return;
    if (player.src) URL.revokeObjectURL(player.src);
    player.src = URL.createObjectURL(blob);
    player.dataset.uid = uid;
    player.dataset.offset = offset;
    await new Promise((ok, fail) => {
      player.addEventListener("loadedmetadata", ok, { once: true });
      player.addEventListener("error", () => fail(new Error("录音无法播放")), { once: true });
    });
    if (ask !== replaying) return;
    player.currentTime = offset; // start at the line itself, not at the padding before it
    document.querySelectorAll("li.playing").forEach((li) => li.classList.remove("playing"));
    document.querySelector(`li[data-uid="${CSS.escape(uid)}"]`)?.classList.add("playing");
    if (cut) notice(`这一行很长：只回放到 ${clock(Number(cut))}，其余请在录音中核听`, true);
    await player.play();
  } catch (err) {
    if (ask === replaying) notice(`回放失败：${err.message}`, true);
  }
}

function stopHighlight() {
  document.querySelectorAll("li.playing").forEach((li) => li.classList.remove("playing"));
}

// -- search, read-back, sign-off, exports, pauses -----------------------------------------------
/** Only the lines whose words hold the search (not their times, speakers or notes); the line she
 * is editing stays, whatever she types. */
function applySearch() {
  const q = $("search").value.trim();
  let hits = 0;
  for (const li of $("lines").children) {
    const entry = utterances.get(li.dataset.uid);
    const match = !q || (entry ? entry.u.text || "" : li.textContent).includes(q);
    li.hidden = !match && li.dataset.uid !== editing;
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

async function signOff() {
  if (status === "open" || status === "scheduled") { // two steps: the record is read back between them
    try {
      setStatus((await api(`${base}/close`, { method: "POST" })).status);
      notice("已闭庭：请核对朗读笔录，核对无误后再签名", true);
    } catch (err) { notice(`闭庭未完成：${err.message}`, true); }
    return;
  }
  // with tokens the signer is the token's holder, in a role the token holds
  const who = await api("/v1/whoami").catch(() => ({ signs_as: null }));
  const roles = Object.entries(ROLES).filter(([id]) => !who.signs_as || who.signs_as.includes(id));
  $("sign-role").replaceChildren(...roles.map(([id, label]) => el("option", { value: id }, label)));
  $("sign-role").value = who.signs_as ? who.signs_as[0] : "clerk";
  if (who.signs_as) { $("sign-name").value = who.name; $("sign-name").readOnly = true; }
  const dialog = $("sign-dialog");
  dialog.onclose = async () => {
    if (dialog.returnValue !== "ok") return;
    try {
      // what is signed is what was read back (else what this screen shows): the server refuses a record
      // changed after that digest, so a correction made during the read-back is read again
      const heard = readBack && await readBack;
      if (!heard && status === "closed") { // the first signature binds what was read back: nothing else
        notice("请先点“核对朗读”，向当事人宣读核对笔录后再签名", true);
        return;
      }
      const digest = heard || (await api(`${base}/digest`)).digest; // a signed record no longer changes
      const differ = await differences();
      if (differ.length) {
        await backfill();
        const first = pointAt(differ);
        notice(`屏幕上有 ${differ.length} 行与记录不一致（未识别完、未保存、未存入笔录或刚被更改）：已刷新`
               + `${first ? `，已选中${lineName(first)}` : ""}。请核对后再签名`, true);
        return;
      }
      const signed = await api(`${base}/signatures`, { method: "POST",
                                                       body: { by: $("sign-name").value, role: $("sign-role").value, digest } });
      setStatus(signed.status);
      notice(`已签名，笔录摘要 ${signed.digest.slice(0, 12)}…`);
    } catch (err) { signRefused(err); }
  };
  dialog.returnValue = ""; // an Esc keeps the last value: not a signature
  dialog.showModal();
}

/** The record refused the signature over one line (its ``utterance_id``): she is taken to it. */
function signRefused(err) {
  const uid = err.detail?.utterance_id;
  if (!uid || !utterances.has(uid)) { notice(`签名失败：${err.message}`, true); return; }
  pointAt([uid]);
  const why = /heard otherwise/.test(err.message) ? "在您修改后收到了不同的识别结果" : "尚待核对";
  notice(`签名未完成：${lineName(uid)}${why}。请核听后按 C 确认本行（或按 Enter 修改），`
         + "再重新“核对朗读”后签名", true);
}

/** How the clerk finds a line: its place on the screen, its time and speaker. */
function lineName(uid) {
  const n = [...$("lines").children].findIndex((li) => li.dataset.uid === uid) + 1;
  const { u } = utterances.get(uid);
  return `第${n}行（${clock(u.start_ms)} ${who(u)}）`;
}

/** Mark the lines on the screen among ``uids`` and select the first of them; returns its uid. */
function pointAt(uids) {
  const lis = [...$("lines").children].filter((li) => uids.includes(li.dataset.uid));
  lis.forEach((li) => li.classList.add("differs"));
  if (!lis.length) return null;
  lis[0].hidden = false; // a search may hide it
  select(lis[0].dataset.uid);
  lis[0].scrollIntoView({ block: "center" });
  $("lines").focus({ preventScroll: true }); // her next key (Enter, C) acts on it
  return lis[0].dataset.uid;
}

let readBack = null; // the record's digest when the read-back began (a promise)

/** The lines this screen shows otherwise than the record holds (unfinished, unsaved, not stored,
 * changed since), and the record's lines it does not show. */
async function differences() {
  const record = await api(base);
  const held = new Map(record.utterances.map((u) => [u.id, u]));
  const differ = record.utterances.filter((u) => !utterances.has(u.id)).map((u) => u.id);
  for (const [uid, entry] of utterances) {
    const u = held.get(uid);
    const same = u && entry.status !== "partial" && u.text === entry.u.text
      && u.speaker === entry.u.speaker;
    if (!same) differ.push(uid);
  }
  return differ;
}

async function pauseOrResume() {
  const kind = $("pause").dataset.kind || "paused";
  const reason = prompt(kind === "paused" ? "休庭原因" : "继续开庭说明", kind === "paused" ? "合议庭评议" : "继续开庭");
  if (!reason) return;
  const atMs = Math.max(0, ...[...utterances.values()].map((l) => l.u.end_ms));
  try { await api(`${base}/interruptions`, { method: "POST", body: { kind, at_ms: atMs, reason } }); }
  catch (err) { notice(err.message, true); }
}

// -- wiring -------------------------------------------------------------------------------------
function keys(ev) {
  if (editing || ev.target.closest("input, textarea, select, dialog")) return;
  const k = ev.key;
  if ((k === "Enter" || k === " ") && ev.target.closest("button, a, [role=button]")) return; // they press it
  if (k === "ArrowDown") { ev.preventDefault(); move(1); }
  else if (k === "ArrowUp") { ev.preventDefault(); move(-1); }
  else if (k === "Enter") { ev.preventDefault(); startEdit(); }
  else if (k === "s" || k === "S") { ev.preventDefault(); chooseSpeaker(); }
  else if (k === "m" || k === "M") { ev.preventDefault(); mergeNext(); }
  else if (k === "c" || k === "C") { ev.preventDefault(); confirmLine(); }
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
      // (after 闭庭 only: closing stamps the record, and lines still come while the hearing is open)
      readBack = status === "closed" ? api(`${base}/digest`).then((r) => r.digest).catch(() => null) : null;
    }
    $("readback").setAttribute("aria-pressed", String(on));
    $("readback").textContent = on ? "返回编辑" : "核对朗读";
  });
  if (params.get("readback")) $("readback").click(); // opened as the read-back view (from the front page)
  $("sign").addEventListener("click", signOff);
  $("pause").addEventListener("click", pauseOrResume);
  $("blank").addEventListener("click", async () => {
    const on = $("captions-state").hidden;
    try { await api(`${base}/captions/switch`, { method: "POST", body: { blanked: on, reason: on ? "不公开内容" : null } }); }
    catch (err) { notice(err.message, true); }
  });
  exportButtons().catch((err) => failed("导出格式未能读取：", err));
  $("add-participant").role.replaceChildren(...Object.entries(ROLES).map(([id, label]) => el("option", { value: id }, label)));
  $("add-participant").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const body = { role: f.role.value, name: f.name.value || null, channel: f.channel.value === "" ? null : Number(f.channel.value),
                   protected: f.protected.checked };
    try { await api(`${base}/participants`, { method: "POST", body }); f.reset(); }
    catch (err) { notice(err.message, true); }
  });
  $("add-redaction").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = ev.target.text.value.trim();
    if (text) await choose({ action: "add", text, reason: "书记员隐去" });
    ev.target.reset();
  });
  $("public-export").addEventListener("click", () =>
    download(`${base}/export?format=pdf&version=public`).catch((err) => notice(err.message, true)));
  $("add-hotword").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const word = ev.target.word.value.trim();
    if (word && !ownHotwords.includes(word)) await saveHotwords([...ownHotwords, word]);
    ev.target.reset();
  });
  $("enroll").addEventListener("click", async () => {
    const entry = selected && utterances.get(selected);
    const name = entry && (entry.u.participant || prompt("登记谁的声纹？（姓名）"));
    if (!name) return;
    try {
      await api(`${base}/participants/${encodeURIComponent(name)}/voice`, { method: "POST",
        body: { channel: entry.u.channel, from_ms: entry.u.start_ms, to_ms: entry.u.end_ms } });
      notice(`已登记 ${name} 的声纹`);
    } catch (err) { notice(`声纹登记失败：${err.message}`, true); }
  });
  const player = $("player");
  player.addEventListener("ended", stopHighlight);
  player.addEventListener("pause", stopHighlight);
  setInterval(channelStatus, 1000);
  liveSocket(`${base}/events`, {
    onEvent: (e) => (handlers[e.type] || (() => {}))(e),
    onOpen: () => backfill().then(() => {
      const b = $("banner");
      if (b.dataset.sticky === "down") { b.hidden = true; b.dataset.sticky = ""; }
      document.body.dataset.connection = "open";
    }).catch((err) => failed("", err)),
    onState: (s, e) => {
      if (s === "down") {
        document.body.dataset.connection = "down";
        const b = $("banner");
        if (e && (e.code === 4401 || e.code === 4403)) { refuse(e.code); return; }
        b.textContent = e && e.code >= 4400 ? `无法连接：${e.reason || e.code}` : "连接已断开，正在重新连接…（笔录不会丢失）";
        b.hidden = false;
        b.dataset.sticky = "down";
      }
    },
  });
}

main();
