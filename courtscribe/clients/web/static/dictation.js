// Judge dictation (法官语音录入): one browser microphone → PCM16 over the native protocol → text in
// the document at the caret. The server turns spoken commands into edits (asr/commands.py); this page
// applies them, keeping an undo stack so 撤销 takes back the last dictated change.
import { download, token } from "./common.js";

const $ = (id) => document.getElementById(id);
const editor = $("editor");
const undoStack = []; // each applied change as {at, removed, inserted}: 撤销 takes back only that
let session = null;

// -- applying the server's edits --------------------------------------------------------------------
/** Replace [from, to) with ``text``, remembering how to take it back (keyboard edits elsewhere stay). */
function change(from, to, text) {
  undoStack.push({ at: from, removed: editor.value.slice(from, to), inserted: text });
  if (undoStack.length > 200) undoStack.shift();
  editor.setRangeText(text, from, to, "end");
}

function insert(text) {
  change(editor.selectionStart, editor.selectionEnd, text);
}

function punctuate(mark) {
  // a mark said on its own: it takes the place of the engine's mark at the end of the text before the caret
  const at = editor.selectionStart;
  const trail = editor.value.slice(0, at).match(/[，。？！：；、,.?!:; ]*$/)[0].length;
  change(at - trail, at, mark);
}

function deleteSentence() {
  // the sentence (or item of a list: 一、…；二、…) ending at the caret: back to the previous end mark or line break
  const at = editor.selectionStart;
  const before = editor.value.slice(0, at).replace(/\s+$/, "");
  if (!before) return;
  const cut = Math.max(...["。", "？", "！", "；", "：", "\n"].map((ch) => before.lastIndexOf(ch, before.length - 2)));
  notice(`已删除：${editor.value.slice(cut + 1, at).trim()}`);
  change(cut + 1, at, "");
}

function undo() {
  const last = undoStack.at(-1);
  if (!last) return;
  if (editor.value.slice(last.at, last.at + last.inserted.length) !== last.inserted) {
    notice("上一处语音修改之后文档已被改动，未撤销（可用 Ctrl+Z）");
    return;
  }
  undoStack.pop();
  editor.setRangeText(last.removed, last.at, last.at + last.inserted.length, "end");
}

const OPS = { insert: (op) => insert(op.text), punctuate: (op) => punctuate(op.text), delete_sentence: deleteSentence, undo };

export function apply(ops) {
  for (const op of ops) (OPS[op.op] || (() => {}))(op);
  document.body.dataset.applied = String(Number(document.body.dataset.applied || 0) + ops.length);
}

// -- the microphone and the stream --------------------------------------------------------------------
/** The note for a stretch the engine could not recognize (the record flags the same line). */
function unrecognized(u) {
  const mmss = (ms) => `${String(Math.floor(ms / 60000)).padStart(2, "0")}:${String(Math.floor(ms / 1000) % 60).padStart(2, "0")}`;
  return `${mmss(u.start_ms)}–${mmss(u.end_ms)} 未能识别，请重说这一句。`;
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
    else if (e.type === "error") notice(`${e.code}: ${e.message}`);
    else if (e.type === "end") ws.close();
  };
  ws.onclose = (e) => {
    if (session && session.ws === ws) release();
    if (e.code !== 1000) notice(`录音连接已断开（${e.reason || e.code}），已录入的文字保留。`);
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

$("record").addEventListener("click", () => (session ? stop() : start().catch((err) => { release(); notice(`无法录音：${err.message}`); })));
$("undo").addEventListener("click", undo);
$("delete-sentence").addEventListener("click", deleteSentence);
$("export").addEventListener("click", async () => {
  try {
    await download("/v1/documents/docx", { method: "POST", body: { title: $("doc-title").value, text: editor.value } });
  } catch (err) { notice(`导出失败：${err.message}`); }
});

