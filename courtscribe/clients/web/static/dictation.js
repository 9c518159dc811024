// Judge dictation (法官语音录入): one browser microphone → PCM16 over the native protocol → text in
// the document. The server turns spoken commands into edits (asr/commands.py); this page applies
// them, keeping an undo stack so 撤销 takes back the last dictated change.
//
// Where an edit goes: new dictated words go in at the caret (where the judge clicked is where she
// wants her next words). A mark said on its own, 删除上一句 and the start of a command cut by a
// pause (retract) act at the dictation point instead: the end of the last dictated words, moved
// along by her typing before it, and carried on by typing at it (she went on by hand). They were
// said about what she just dictated, often while she was already clicking somewhere else.
import { download, refusal, token } from "./common.js";

const $ = (id) => document.getElementById(id);
const editor = $("editor");
// one entry per final (or button) applied: its changes [{at, removed, inserted, mark, held, stale}]
const undoStack = [];
let pending = []; // the changes of the final being applied: one 撤销 takes them back together
let reverting = []; // the changes of the entry 撤销 is taking back, not yet undone
let point = null; // the dictation point (null: nothing dictated yet on this page: the caret)
let autoMark = ""; // the engine's own mark just before the point: a mark said next replaces it
let seen = editor.value; // the text as this page last left it: what differs since was typed
let session = null;

// -- keeping positions true while the judge types --------------------------------------------
/** [from, to) became ``length`` characters: move every stored position, so 撤销 and the
 * dictation point stay on the words they were about. A typed change over a dictated one makes it
 * stale (撤销 then refuses); one of ours over an older change is noted in ``held``, to put the
 * older change back in place when ours is taken back. */
function track(from, to, length, typed, held = []) {
  const delta = length - (to - from);
  for (const c of [...undoStack.flat(), ...pending, ...reverting]) {
    const end = c.at + c.inserted.length;
    if (to < c.at || (to === c.at && (from < to || end > c.at))) c.at += delta; // wholly before
    else if (from > end || (from === end && (to > from || end > c.at || !typed))) continue; // after
    else if (typed) c.stale = true;
    else { held.push([c, c.at - from]); c.at = Math.min(c.at, from); }
  }
  if (!typed || point === null) return held;
  if (to >= point - autoMark.length && from <= point) autoMark = ""; // typed at the engine's mark
  if (point > to) point += delta;
  else if (point >= from) point = from + length; // typing at the point goes on from it
  return held;
}

/** Whatever changed since this page last wrote, as one typed change (the input event's caret, where
 * there is one, says where it was: typing ends at the caret, deleting leaves it at the cut). */
function sync(caret = null) {
  const was = seen, now = editor.value;
  if (was === now) return;
  const both = Math.min(was.length, now.length);
  const same = (i) => was[was.length - 1 - i] === now[now.length - 1 - i];
  let pre = 0, suf = 0;
  if (caret === null) {
    while (pre < both && was[pre] === now[pre]) pre++;
    while (suf < both - pre && same(suf)) suf++;
  } else {
    while (suf < Math.min(both, now.length - caret) && same(suf)) suf++;
    while (pre < both - suf && was[pre] === now[pre]) pre++;
  }
  seen = now;
  track(pre, was.length - suf, now.length - suf - pre, true);
}

// -- applying the server's edits --------------------------------------------------------------------
/** Put ``text`` over [from, to) of the editor; the caret goes after it only if it was there. */
function write(from, to, text) {
  const there = editor.selectionStart >= from && editor.selectionEnd <= to;
  editor.setRangeText(text, from, to, there ? "end" : "preserve");
  seen = editor.value;
}

/** Replace [from, to) with ``text``, remembering how to take it back (keyboard edits elsewhere stay). */
function change(from, to, text) {
  const removed = editor.value.slice(from, to);
  const held = track(from, to, text.length, false);
  pending.push({ at: from, removed, inserted: text, mark: autoMark, held, stale: false });
  write(from, to, text);
  point = from + text.length;
  autoMark = "";
}

const here = () => (point === null ? editor.selectionStart : Math.min(point, editor.value.length));

function insert(op) {
  change(editor.selectionStart, editor.selectionEnd, op.text);
  autoMark = op.auto_mark || "";
}

function punctuate(mark) {
  // a closing or sentence mark said on its own: it takes the place of the mark the engine put
  // at the end of the last dictated words, never of a mark the judge said or typed
  const at = here();
  const auto = autoMark && editor.value.slice(at - autoMark.length, at) === autoMark;
  change(auto ? at - autoMark.length : at, at, mark);
}

function retract(text) {
  // the start of a command, written with the previous final: gone, if the judge left it there
  const at = here();
  if (text && editor.value.slice(at - text.length, at) === text) change(at - text.length, at, "");
}

function deleteSentence(at = here()) {
  // the sentence (or item of a list: 一、…；二、…) ending at ``at``: back to the previous end
  // mark or line break
  const before = editor.value.slice(0, at).replace(/\s+$/, "");
  if (!before) return;
  const cut = Math.max(...["。", "？", "！", "；", "：", "\n"].map((ch) => before.lastIndexOf(ch, before.length - 2)));
  notice(`已删除：${editor.value.slice(cut + 1, at).trim()}`);
  change(cut + 1, at, "");
}

function commit() {
  if (pending.length) undoStack.push(pending);
  if (undoStack.length > 200) undoStack.shift();
  pending = [];
}

function undo() {
  commit();
  const last = undoStack.at(-1);
  if (!last) {
    notice("没有可撤销的语音修改");
    return;
  }
  const changed = (c) => c.stale
    || editor.value.slice(c.at, c.at + c.inserted.length) !== c.inserted;
  if (last.some((c) => c.stale) || changed(last.at(-1))) {
    notice("上一处语音修改之后文档已被改动，未撤销（可用 Ctrl+Z）");
    return;
  }
  reverting = undoStack.pop().slice();
  while (reverting.length) {
    const c = reverting.pop();
    if (changed(c)) { notice("上一处语音修改之后文档已被改动，未能全部撤销（可用 Ctrl+Z）"); break; }
    const to = c.at + c.inserted.length;
    track(c.at, to, c.removed.length, false);
    write(c.at, to, c.removed);
    for (const [older, offset] of c.held) older.at = c.at + offset;
    point = c.at + c.removed.length;
    autoMark = c.mark && editor.value.slice(point - c.mark.length, point) === c.mark ? c.mark : "";
  }
  reverting = [];
}

const OPS = { insert, punctuate: (op) => punctuate(op.text), retract: (op) => retract(op.text),
  delete_sentence: () => deleteSentence(), undo };

export function apply(ops) {
  sync(); // a change the page was not told of (a script, an extension) counts as typed
  for (const op of ops) (OPS[op.op] || (() => {}))(op);
  commit();
  document.body.dataset.applied = String(Number(document.body.dataset.applied || 0) + ops.length);
}

editor.addEventListener("input", () => sync(editor.selectionEnd));

// -- the microphone and the stream --------------------------------------------------------------------
/** The note for a stretch the engine could not recognize (the record flags the same line). */
function unrecognized(u) {
  const mmss = (ms) => `${String(Math.floor(ms / 60000)).padStart(2, "0")}:${String(Math.floor(ms / 1000) % 60).padStart(2, "0")}`;
  return `${mmss(u.start_ms)}–${mmss(u.end_ms)} 未能识别，请重说这一句。`;
}

// what the judge reads for the server's error codes (the server's own message is in English)
const ERRORS = {
  busy: "同时录音的人数已满，请稍后再试",
  rate_limited: "请求过于频繁，请稍后再试",
  too_many_sockets: "打开的录音连接过多，请关闭其他录音页面后再试",
  idle_timeout: "长时间没有收到声音，录音已停止",
  engine_error: "语音识别出错",
  bad_sample_rate: "麦克风的采样率不受支持",
  frame_too_large: "音频数据过大",
  audit_unavailable: "审计日志暂不可用，暂时不能录音",
  store_unavailable: "服务器存储暂不可用",
  store_error: "服务器存储出错",
  store_delayed: "服务器存储暂不可用，文字稍后保存",
  disk_full: "服务器磁盘已满，录音已停止",
  archive_error: "服务器无法保存录音",
};

/** A server error, in Chinese: refusals of the token as every page says them, the rest by code. */
function errorText(code) {
  if (code === "unauthorized") return refusal(401);
  if (code === "forbidden" || code === "forbidden_origin") return refusal(403);
  return ERRORS[code] || `服务器出错（错误代码 ${code}）`;
}

/** Why the socket closed, in Chinese (its own reason is the server's English). */
function closeText(code) {
  if (code === 4401 || code === 4403) return refusal(code);
  if (code === 4429) return ERRORS.rate_limited;
  if (code >= 4500 || code === 1011 || code === 1013) return "服务器暂时无法处理录音";
  if (code === 1006) return "网络中断";
  return `连接关闭（代码 ${code}）`;
}

/** Why the microphone could not start, in Chinese (the browser says it in English). */
function micText(err) {
  const why = { NotAllowedError: "浏览器未允许使用麦克风", NotFoundError: "未找到麦克风",
    NotReadableError: "麦克风被其他程序占用或无法读取", SecurityError: "此网址不允许使用麦克风（需 https）" };
  return why[err.name] || "无法打开麦克风";
}

/** Why an export failed, in Chinese. */
function exportText(err) {
  if (err.status === 401 || err.status === 403) return refusal(err.status);
  if (err.status === 422 || err.status === 413) return "文书过长（正文不超过 20 万字，标题不超过 200 字）";
  if (err.status === 429) return ERRORS.rate_limited;
  if (err.status) return `服务器出错（HTTP ${err.status}），请稍后再试`;
  return "无法连接服务器";
}

function notice(text) {
  $("banner").textContent = text;
  $("banner").hidden = !text;
}

function setState(text, recording) {
  $("state").textContent = text;
  document.body.classList.toggle("recording", recording);
  $("record").textContent = recording ? "停止录音" : "开始录音";
}

async function start() {
  notice("");
  const mic = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: false,
    noiseSuppression: false, autoGainControl: false } });
  const ctx = new AudioContext({ sampleRate: 16000 }); // the browser resamples the microphone for us
  await ctx.audioWorklet.addModule("/ui/static/pcm-worklet.js");
  const node = new AudioWorkletNode(ctx, "pcm-blocks");
  ctx.createMediaStreamSource(mic).connect(node);
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/stream`;
  const ws = new WebSocket(url, token ? ["courtscribe.v1", `bearer.${token}`] : ["courtscribe.v1"]);
  ws.binaryType = "arraybuffer";
  let ready = false;
  let said = ""; // the last error the server gave: the close that follows says no more than it
  session = { mic, ctx, ws };
  ws.onopen = () => {
    const hotwords = $("hotwords").value.split(/[,，、\s]+/).filter(Boolean);
    ws.send(JSON.stringify({ type: "start", sample_rate: ctx.sampleRate, role: "judge", hotwords, dictation: true }));
  };
  ws.onmessage = (m) => {
    const e = JSON.parse(m.data);
    if (e.type === "ready") { ready = true; setState("录音中", true); }
    else if (e.type === "partial") $("partial").textContent = e.text;
    else if (e.type === "final") {
      $("partial").textContent = "";
      apply(e.dictation || []);
      // speech without usable text: said on the page, not written into the judge's document
      if ((e.utterance.flags || []).includes("unrecognized") && !e.utterance.text) notice(unrecognized(e.utterance));
    }
    else if (e.type === "error") notice(said = errorText(e.code));
    else if (e.type === "end") ws.close();
  };
  ws.onclose = (e) => {
    if (session && session.ws === ws) release();
    if (e.code !== 1000) notice(`录音已停止：${said || closeText(e.code)}。已录入的文字保留。`);
  };
  node.port.onmessage = ({ data }) => {
    if (!ready || ws.readyState !== WebSocket.OPEN) return;
    const pcm = new Int16Array(data.length);
    for (let i = 0; i < data.length; i++) pcm[i] = Math.max(-1, Math.min(1, data[i])) * 0x7fff;
    ws.send(pcm.buffer);
  };
}

function release() {
  if (!session) return;
  session.mic.getTracks().forEach((t) => t.stop());
  session.ctx.close();
  session = null;
  setState("未录音", false);
}

function stop() {
  // the server finalizes what was said so far, sends its final, then "end" and closes
  if (session && session.ws.readyState === WebSocket.OPEN) session.ws.send(JSON.stringify({ type: "stop" }));
  if (session) { session.mic.getTracks().forEach((t) => t.stop()); setState("正在结束…", false); }
}

$("record").addEventListener("click", () => (session ? stop()
  : start().catch((err) => { release(); notice(`无法录音：${micText(err)}`); })));
$("undo").addEventListener("click", () => { sync(); undo(); });
// the button deletes the sentence before the caret: a hand on the mouse points where it means
$("delete-sentence").addEventListener("click", () => {
  sync();
  deleteSentence(editor.selectionStart);
  commit();
});
$("export").addEventListener("click", async () => {
  try {
    // a half of a character pair (a broken paste) is no text a server can read: it becomes �
    const text = editor.value.toWellFormed ? editor.value.toWellFormed() : editor.value;
    await download("/v1/documents/docx", { method: "POST", body: { title: $("doc-title").value, text } });
  } catch (err) { notice(`导出失败：${exportText(err)}`); }
});

