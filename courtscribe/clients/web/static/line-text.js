// How one line of the clerk's screen reads: who spoke, the words (low-confidence ones marked), and
// each warning the record carries for it. Pure: an utterance in, nodes out (clerk.js draws them).
import { ROLES, el } from "./common.js";

const LOW = 0.5; // a token below this probability is marked for checking

export function who(u) {
  const role = u.role ? ROLES[u.role] || u.role : null;
  if (role && u.participant) return `${role} ${u.participant}`;
  return role || u.speaker || "—";
}

/** Where each token of ``tokens`` sits in ``text`` (found in order): [start, end, low?, prob]. */
export function tokenSpans(text, tokens) {
  const spans = [];
  let at = 0;
  for (const t of tokens || []) {
    const piece = t.text.trim();
    const found = piece ? text.indexOf(piece, at) : -1;
    if (found < 0) continue;
    const low = t.prob !== null && t.prob !== undefined && t.prob < LOW;
    spans.push([found, found + piece.length, low, t.prob]);
    at = found + piece.length;
  }
  return spans;
}

/** Speech the engine gave no usable text for, and nobody has typed yet (docs/record-format.md). */
export function unrecognized(u) {
  return (u.flags || []).includes("unrecognized") && !(u.text || "").trim();
}

/** The visible gap the record writes for such a line: 〔00:17–00:28 未能识别，请核听录音〕. */
function gapNote(u) {
  const mmss = (ms) => {
    const s = Math.floor(ms / 1000), pad = (n) => String(n).padStart(2, "0");
    return s >= 3600 ? `${Math.floor(s / 3600)}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`
      : `${pad(Math.floor(s / 60))}:${pad(s % 60)}`;
  };
  return `〔${mmss(u.start_ms)}–${mmss(u.end_ms)} 未能识别，请核听录音〕`;
}

const has = (u, flag) => (u.flags || []).includes(flag);
const note = (cls, title, text) => [" ", el("mark", { class: cls, title }, text)];

/** A line whose neighbouring seat's audio came too late to check it for that seat's bleed; once
 * she has looked at it (edited or confirmed) the record no longer says so, nor does the screen. */
function crosstalkNote(u, status) {
  if (!has(u, "crosstalk_unchecked") || status !== "final") return [];
  return note("crosstalk", "邻座麦克风的声音迟到，未能核对串音：这一行可能重复了另一席位的话，请核听", "可能串音");
}

/** A line another voice spoke over (two people at once): the clerk checks who said what by ear. */
function overlapNote(u) {
  if (!has(u, "overlap")) return [];
  return note("overlap", "两人同时说话：这一行的时间里另有人在说话，请核听归属", "同时发言");
}

/** A line she corrected while it was a partial, whose final then said more or otherwise: her text
 * stands, the engine's is shown beside it until she edits or confirms the line again. */
function lateFinalNote(u) {
  if (!has(u, "final_after_edit")) return [];
  return note("late-final", `修改后到达的识别结果：${u.machine_text || ""}（核对后按 C 确认本行，或按 Enter 修改）`,
              `识别结果：${u.machine_text || ""}`);
}

/** A line whose speaker the machine could not tell: a guess until she assigns or confirms it. */
function unsureNote(u) {
  if (!has(u, "speaker_unsure")) return [];
  return note("unsure", "机器未能确定是谁说的：点时间回放，核对后指定发言人（S）或确认本行（C）", "发言人待核");
}

/** A final the record store failed to write: on screen only, until she saves it (Enter). */
function unstoredNote(why) {
  if (!why) return [];
  return note("unstored", `记录库未能写入这一行（${why}）：它不在笔录中。核对后按 Enter 保存，补入笔录`,
              "未存入笔录");
}

/** The text cell's nodes; ``unstored``: why the store did not take the line, if it did not. */
export function textNodes(u, status, unstored = null) {
  return [...lineText(u, status), ...unstoredNote(unstored), ...unsureNote(u),
          ...crosstalkNote(u, status), ...overlapNote(u), ...lateFinalNote(u)];
}

function lineText(u, status) {
  if (unrecognized(u)) {
    return [el("mark", { class: "gap", title: "未能识别：点时间回放，按 Enter 录入" }, gapNote(u))];
  }
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
    const title = `置信度 ${(prob * 100).toFixed(0)}%`;
    out.push(low ? el("mark", { class: "low", title }, piece) : piece);
    at = end;
  }
  if (at < u.text.length) out.push(u.text.slice(at));
  return out;
}
