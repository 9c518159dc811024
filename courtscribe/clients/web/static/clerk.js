// The clerk's live screen (书记员): the hearing's lines as they are spoken, corrected in place.
// State is one map of lines keyed by utterance id; every source (live partials and finals, other
// screens' edits, the backfill after a reconnect) is applied to it the same idempotent way, so a
// line can never appear twice and a human edit is never overwritten by machine text.
import { ApiError, ROLES, api, clock, download, el, liveSocket, params, refusal } from "./common.js";

const hearingId = params.get("hearing");
const base = `/v1/hearings/${encodeURIComponent(hearingId)}`;
const LOW = 0.5; // a token below this probability is marked for checking
const $ = (id) => document.getElementById(id);

const utterances = new Map(); // uid → {u: utterance, status: partial|final|edited|confirmed, humanSpeaker}
const participants = [];
const channels = new Map(); // channel → {speaker, connected, rms, peak, voiceAt: last speech (ms since epoch)}
let status = "scheduled";
let selected = null;
let editing = null;
let editBase = null; // the line's text when her correction began (entries are replaced as events come)

// -- rendering ---------------------------------------------------------------------------------
function who(u) {
  const role = u.role ? ROLES[u.role] || u.role : null;
  if (role && u.participant) return `${role} ${u.participant}`;
  return role || u.speaker || "—";
}

/** Where each token of ``tokens`` sits in ``text`` (found in order): [start, end, low-confidence?]. */
function tokenSpans(text, tokens) {
  const spans = [];
  let at = 0;
  for (const t of tokens || []) {
    const piece = t.text.trim();
    const found = piece ? text.indexOf(piece, at) : -1;
    if (found < 0) continue;
    spans.push([found, found + piece.length, t.prob !== null && t.prob !== undefined && t.prob < LOW, t.prob]);
    at = found + piece.length;
  }
  return spans;
}

/** Speech the engine gave no usable text for, and nobody has typed yet (flags: docs/record-format.md). */
function unrecognized(u) {
  return (u.flags || []).includes("unrecognized") && !(u.text || "").trim();
}

/** The visible gap the record writes for such a line: 〔00:17–00:28 未能识别，请核听录音〕. */
function gapNote(u) {
  const mmss = (ms) => {
    const s = Math.floor(ms / 1000), pad = (n) => String(n).padStart(2, "0");
    return s >= 3600 ? `${Math.floor(s / 3600)}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}` : `${pad(Math.floor(s / 60))}:${pad(s % 60)}`;
  };
  return `〔${mmss(u.start_ms)}–${mmss(u.end_ms)} 未能识别，请核听录音〕`;
}

/** A line whose neighbouring seat's audio came too late to check it for that seat's bleed. */
function crosstalkNote(u) {
  if (!(u.flags || []).includes("crosstalk_unchecked")) return [];
  return [" ", el("mark", { class: "crosstalk", title: "邻座麦克风的声音迟到，未能核对串音：这一行可能重复了另一席位的话，请核听" }, "可能串音")];
}

/** A line another voice spoke over (two people at once): the clerk checks who said what by ear. */
function overlapNote(u) {
  if (!(u.flags || []).includes("overlap")) return [];
  return [" ", el("mark", { class: "overlap", title: "两人同时说话：这一行的时间里另有人在说话，请核听归属" }, "同时发言")];
}

/** A line she corrected while it was a partial, whose final then said more or otherwise: her text
 * stands, the engine's is shown beside it until she edits or confirms the line again. */
function lateFinalNote(u) {
  if (!(u.flags || []).includes("final_after_edit")) return [];
  return [" ", el("mark", { class: "late-final", title: `修改后到达的识别结果：${u.machine_text || ""}` },
                  `识别结果：${u.machine_text || ""}`)];
}

/** A line whose speaker the machine could not tell: the label is a guess until she assigns or confirms it. */
function unsureNote(u) {
  if (!(u.flags || []).includes("speaker_unsure")) return [];
  return [" ", el("mark", { class: "unsure", title: "机器未能确定是谁说的：点时间回放，核对后指定发言人或确认本行" }, "发言人待核")];
}

function textNodes(u, status) {
  return [...lineText(u, status), ...unsureNote(u), ...crosstalkNote(u), ...overlapNote(u), ...lateFinalNote(u)];
}

function lineText(u, status) {
  if (unrecognized(u)) return [el("mark", { class: "gap", title: "未能识别：点时间回放，按 Enter 录入" }, gapNote(u))];
  if (status === "partial") { // what it settled on stays as shown; the rest may still change
    const n = Math.min(u.stable || 0, u.text.length);
    return [el("span", { class: "settled" }, u.text.slice(0, n)), u.text.slice(n)];
  }
  if (!u.tokens || !u.tokens.length || status === "edited") return [u.text];
  // mark low-confidence words; tokens carry the engine's text pieces, the line's text is punctuated
  const out = [];
  let at = 0;
  for (const [start, end, low, prob] of tokenSpans(u.text, u.tokens)) {
    if (start > at) out.push(u.text.slice(at, start));
    const piece = u.text.slice(start, end);
    out.push(low ? el("mark", { class: "low", title: `置信度 ${(prob * 100).toFixed(0)}%` }, piece) : piece);
    at = end;
  }
  if (at < u.text.length) out.push(u.text.slice(at));
  return out;
}

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
    el("button", { class: "time", type: "button", title: "回放这一行", onclick: () => replay(uid) }, clock(u.start_ms)),
    el("span", { class: "who", onclick: () => { select(uid); chooseSpeaker(); } }, who(u)),
    el("span", { class: "text" }, ...textNodes(u, st)));
  if (uid === selected) fresh.classList.add("selected");
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
function upsert(uid, u, st, { authoritative = false } = {}) {
  const entry = utterances.get(uid);
  if (entry && !authoritative) {
    if (entry.status === "edited" || entry.status === "confirmed") {
      // a person's text wins over any later machine text; times and tokens still come in. A final
      // after her correction of the partial that says otherwise is shown beside it (the store flags it)
      const late = st !== "partial" && entry.u.machine_text == null && u.text !== entry.u.text;
      entry.u = { ...entry.u, ...u, text: entry.u.text, speaker: entry.humanSpeaker ? entry.u.speaker : u.speaker,
                 role: entry.humanSpeaker ? entry.u.role : u.role, participant: entry.humanSpeaker ? entry.u.participant : u.participant,
                 machine_text: st === "partial" ? entry.u.machine_text : u.text,
                 flags: late ? [...new Set([...(u.flags || []), "final_after_edit"])] : (u.flags || []) };
      render(uid);
      return;
    }
    if (entry.status !== "partial" && st === "partial") return; // a late partial never replaces a final
  }
  utterances.set(uid, { u, status: st, humanSpeaker: entry ? entry.humanSpeaker : false });
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
    const entry = utterances.get(e.utterance_id);
    if (!e.utterance.text && !unrecognized(e.utterance) && !(entry && entry.status === "edited")) {
      utterances.delete(e.utterance_id); // the stretch held no words (a click, a neighbour's bleed)
      render(e.utterance_id);
      return;
    }
    upsert(e.utterance_id, e.utterance, e.utterance.status || "final");
  },
  utterance_changed(e) { // the store's view of a line a person changed (here or on another screen)
    const human = e.utterance.status === "edited" || e.utterance.status === "confirmed";
    utterances.set(e.utterance_id, { u: e.utterance, status: e.utterance.status, humanSpeaker: human || !!(utterances.get(e.utterance_id) || {}).humanSpeaker });
    render(e.utterance_id);
  },
  utterance_removed(e) { // merged into another line, here or on another screen
    const was = selected === e.utterance_id;
    utterances.delete(e.utterance_id);
    render(e.utterance_id);
    if (was) select(e.merged_into);
  },
  speaker_update(e) { // the label the record holds after a machine relabel (a person's label is kept there)
    const entry = utterances.get(e.utterance_id);
    if (!entry) return;
    entry.u = { ...entry.u, speaker: e.speaker, role: e.role, participant: e.participant };
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
    if (e.utterance_id && utterances.has(e.utterance_id)) {
      document.querySelector(`li[data-uid="${CSS.escape(e.utterance_id)}"]`)?.classList.add("failed");
    }
    notice(`${e.code}: ${e.message}`);
  },
};

async function backfill() {
  const record = await api(base);
  for (const [uid, entry] of utterances) { // merged away while this screen was not listening: inside a stored line
    if (entry.status !== "partial" && !record.utterances.some((u) => u.id === uid)
        && record.utterances.some((u) => u.channel === entry.u.channel && u.start_ms <= entry.u.start_ms && u.end_ms >= entry.u.end_ms)) {
      handlers.utterance_removed({ utterance_id: uid });
    }
  }
  // a partial whose final came (or held no words) while this screen was not listening: the record
  // has gone past it on its channel, or the hearing is no longer open
  const reached = new Map();
  for (const u of record.utterances) reached.set(u.channel, Math.max(reached.get(u.channel) ?? 0, u.end_ms));
  for (const [uid, entry] of utterances) {
    if (entry.status === "partial" && !record.utterances.some((u) => u.id === uid) && uid !== editing
        && (status === "closed" || status === "signed" || entry.u.end_ms <= (reached.get(entry.u.channel) ?? -1))) {
      utterances.delete(uid);
      render(uid);
    }
  }
  const h = record.hearing;
  $("title").textContent = h.title || h.case_number || h.id;
  // which hearing this screen (and the courtroom's audio) is in, as the clerk checks it
  $("case").textContent = [h.case_number && `案号 ${h.case_number}`, h.cause && `案由 ${h.cause}`, `编号 ${h.id}`]
    .filter(Boolean).join(" · ");
  for (const u of record.utterances) {
    const entry = utterances.get(u.id);
    // the store is the truth for every line it has; a local edit still being saved keeps its text
    if (!entry || entry.status !== "edited" || u.status === "edited") {
      utterances.set(u.id, { u, status: u.status, humanSpeaker: entry ? entry.humanSpeaker : false });
      render(u.id);
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
  for (const ch of channels.keys()) if (!(now.sources || []).some((x) => x.channel === ch)) channel(ch, { connected: false });
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

function notice(text, sticky = false) {
  if (document.body.classList.contains("refused")) return; // the refusal stays what the clerk reads
  const b = $("banner");
  b.textContent = text;
  b.hidden = false;
  b.dataset.sticky = sticky ? "1" : "";
  if (!sticky) setTimeout(() => { if (!b.dataset.sticky) b.hidden = true; }, 6000);
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

function move(step) {
  const visible = [...$("lines").children].filter((li) => !li.hidden);
  const at = visible.findIndex((li) => li.dataset.uid === selected);
  const next = visible[Math.max(0, Math.min(visible.length - 1, at < 0 ? (step > 0 ? 0 : visible.length - 1) : at + step))];
  if (next) select(next.dataset.uid);
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
  render(uid);
  $("lines").focus();
}

async function saveEdit(text) {
  const uid = editing;
  const entry = utterances.get(uid);
  // the edit shows at once and is saved in the background; a final arriving meanwhile keeps it
  entry.u = { ...entry.u, text };
  const wasPartial = entry.status === "partial";
  entry.status = "edited";
  endEdit();
  entry.base = editBase; // kept on the line should this save fail
  const body = { text, base: editBase };
  if (wasPartial) Object.assign(body, { channel: entry.u.channel, start_ms: entry.u.start_ms, end_ms: entry.u.end_ms, speaker: entry.u.speaker });
  try {
    handlers.utterance_changed({ utterance_id: uid, utterance: await api(`${base}/utterances/${encodeURIComponent(uid)}`, { method: "PATCH", body }) });
    return true;
  } catch (err) {
    if (err.code === "changed_meanwhile") return changedMeanwhile(uid, text);
    entry.unsaved = err.message; // the line says so (and sign-off sees it differs) until a save succeeds
    render(uid);
    notice(`修改未保存：${err.message}`, true);
    return false;
  }
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

const VOICE = /^说话人\d+$/; // a voice the diarizer found and nobody has named yet

function chooseSpeaker() {
  if (!selected || status === "signed") return;
  const choice = $("speaker-choice");
  choice.replaceChildren(...participants.map((p, i) => el("option", { value: i }, `${ROLES[p.role]}${p.name ? " " + p.name : ""}`)));
  const uid = selected;
  const voice = VOICE.test(utterances.get(uid).u.speaker || "") ? utterances.get(uid).u.speaker : null;
  $("speaker-voice-row").hidden = !voice;
  $("speaker-voice").checked = true;
  $("speaker-voice-label").textContent = voice || "";
  const dialog = $("speaker-dialog");
  dialog.onclose = async () => {
    if (dialog.returnValue !== "ok" || !participants.length) return;
    const p = participants[Number(choice.value)];
    const speaker = p.name ? `${ROLES[p.role]} ${p.name}` : ROLES[p.role];
    const body = { speaker, role: p.role, participant: p.name };
    if (voice && $("speaker-voice").checked) { await nameVoice(voice, utterances.get(uid).u.channel, body); return; }
    const entry = utterances.get(uid);
    entry.humanSpeaker = true;
    entry.u = { ...entry.u, ...body };
    render(uid);
    try {
      handlers.utterance_changed({ utterance_id: uid, utterance: await api(`${base}/utterances/${encodeURIComponent(uid)}`,
        { method: "PATCH", body }) });
    } catch (err) {
      entry.unsaved = err.message;
      render(uid);
      notice(`说话人未保存：${err.message}`, true);
    }
  };
  dialog.showModal();
}

/** Every line of one voice to a person (and its next lines too); the banner offers the undo. */
async function nameVoice(voice, channel, body) {
  const path = `${base}/voices/${encodeURIComponent(voice)}`;
  const apply = (res) => res.utterances.forEach((u) => {
    const entry = utterances.get(u.id);
    if (entry) entry.humanSpeaker = true;
    handlers.utterance_changed({ utterance_id: u.id, utterance: u });
  });
  try {
    const res = await api(path, { method: "POST", body: { ...body, channel } });
    apply(res);
    notice(`${voice} 的 ${res.utterances.length} 行已改为 ${body.speaker}`, true);
    const undo = el("button", { type: "button", id: "undo-voice" }, "撤销");
    undo.addEventListener("click", async () => {
      try { apply(await api(`${path}?channel=${channel}`, { method: "DELETE" })); notice(`已撤销：${voice}`); }
      catch (err) { notice(`撤销未完成：${err.message}`, true); }
    });
    $("banner").append(" ", undo);
  } catch (err) { notice(`说话人未保存：${err.message}`, true); }
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
function applySearch() {
  const q = $("search").value.trim();
  let hits = 0;
  for (const li of $("lines").children) {
    const match = !q || li.textContent.includes(q);
    li.hidden = !match;
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
      if (differ) {
        await backfill();
        notice(`屏幕上有 ${differ} 行与记录不一致（未识别完、未保存或刚被更改）：已刷新，请重新核对后再签名`, true);
        return;
      }
      const signed = await api(`${base}/signatures`, { method: "POST",
                                                       body: { by: $("sign-name").value, role: $("sign-role").value, digest } });
      setStatus(signed.status);
      notice(`已签名，笔录摘要 ${signed.digest.slice(0, 12)}…`);
    } catch (err) { notice(`签名失败：${err.message}`, true); }
  };
  dialog.showModal();
}

let readBack = null; // the record's digest when the read-back began (a promise)

/** How many lines this screen shows otherwise than the record holds: unfinished, unsaved, changed since. */
async function differences() {
  const record = await api(base);
  const held = new Map(record.utterances.map((u) => [u.id, u]));
  let n = record.utterances.filter((u) => !utterances.has(u.id)).length;
  for (const [uid, entry] of utterances) {
    const u = held.get(uid);
    if (!u || entry.status === "partial" || u.text !== entry.u.text || u.speaker !== entry.u.speaker) n += 1;
  }
  return n;
}

async function pauseOrResume() {
  const kind = $("pause").dataset.kind || "paused";
  const reason = prompt(kind === "paused" ? "休庭原因" : "继续开庭说明", kind === "paused" ? "合议庭评议" : "继续开庭");
  if (!reason) return;
  const atMs = Math.max(0, ...[...utterances.values()].map((l) => l.u.end_ms));
  try { await api(`${base}/interruptions`, { method: "POST", body: { kind, at_ms: atMs, reason } }); }
  catch (err) { notice(err.message, true); }
}

// The channel panel: each microphone's state, level meter and how long it has been silent.
const SILENT_DB = -60;
function channel(ch, change) {
  const was = channels.get(ch) || { speaker: null, connected: false, rms: -90, peak: -90, voiceAt: null };
  channels.set(ch, { ...was, ...change, speaker: change.speaker || was.speaker });
  channelStatus();
}

function channelStatus() {
  const now = Date.now();
  $("channels").replaceChildren(...[...channels.entries()].sort((a, b) => a[0] - b[0]).map(([ch, c]) => {
    const quiet = c.voiceAt ? Math.round((now - c.voiceAt) / 1000) : null;
    const state = !c.connected ? "已断开" : quiet !== null && quiet < 3 ? "有声音" : quiet === null ? "已连接" : `静默 ${quiet} 秒`;
    const cls = !c.connected ? "down" : c.rms <= SILENT_DB ? "quiet" : "live";
    return el("li", { class: cls, dataset: { channel: ch } },
      el("span", { class: "name" }, `通道 ${ch}${c.speaker ? " " + c.speaker : ""}`),
      el("meter", { min: -60, max: 0, low: -40, high: -6, optimum: -20, value: Math.max(-60, c.rms),
                    title: `电平 ${c.rms.toFixed(0)} dBFS，峰值 ${c.peak.toFixed(0)} dBFS`, "aria-label": `通道 ${ch} 电平` }),
      el("span", { class: "state" }, state));
  }));
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
