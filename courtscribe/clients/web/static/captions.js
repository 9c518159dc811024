// Caption overlay for a livestream (庭审直播), made for an OBS browser source.
// Query: hearing=ID, prefix=1 (role before the words), delay=S (seconds the broadcast video runs behind
// the courtroom: a cue shows S s after it was spoken, never before it arrives), operator=1 (latency panel).
// Lines come ready-cut from the server (at most 16 characters each, never changed once sent: stabilized
// partials, then the rest from the final); this page rolls them up, two on screen, and paces them.
import { Airing } from "./airing.js";
import { closedFor, liveSocket, params } from "./common.js";

const hearingId = params.get("hearing");
const delay = Number(params.get("delay") || 0);
const ROWS = 2; // two lines on screen, the newest at the bottom (roll-up)
const STEP_S = 0.5; // a burst of lines scrolls in no faster than this (each stays up two steps at least)
const CATCH_UP_S = 0.15; // unless more lines wait than fit on screen: then the overlay catches up with the speech
const LINGER_S = 5; // the lines clear this long after the last one if nobody speaks
const box = document.getElementById("caption-box");
const operator = document.getElementById("operator");
operator.hidden = params.get("operator") !== "1";

const queue = [];
const latencies = []; // each line: end of its words → on screen (s)
const endLatencies = []; // each utterance: speech end → its last words on screen (s)
const lineLog = []; // per line, for the latency benchmark: which utterance, how late, from what
const airing = new Airing();
let wasOpen = false;
let dark = false;
let shownAt = 0;
let clearTimer = null;
let pump = null;
let said = null; // the code of the server's last error: a refusal's close follows it

// The server's clock as this PC reads it: a cue's times are the server's wall clock, and an OBS PC
// whose clock is behind held every line back (the least gap seen is the least network delay)
let skew = null;
function serverNow() { return Date.now() / 1000 - (skew ?? 0); }
function heard(cue) {
  if (!cue.sent_at) return;
  const gap = Date.now() / 1000 - cue.sent_at;
  skew = skew === null ? gap : Math.min(skew, gap);
}

let airedTo = null; // where the last line aired ended (hearing time): a reconnect asks from there

function show(cue) {
  airedTo = Math.max(airedTo ?? 0, cue.end_ms ?? 0);
  const div = document.createElement("div");
  div.className = "cap";
  div.textContent = cue.lines.join("");
  const wrap = document.createElement("div");
  wrap.append(div);
  box.append(wrap);
  while (box.children.length > ROWS) box.firstElementChild.remove();
  shownAt = performance.now();
  if (cue.speech_end_at) {
    const lag = serverNow() - cue.speech_end_at;
    latencies.push(lag);
    if (cue.last) endLatencies.push(lag);
    lineLog.push({ utterance_id: cue.utterance_id, lag, stable: cue.stable, last: !!cue.last });
    document.body.dataset.shown = String(latencies.length);
  }
  clearTimeout(clearTimer);
  clearTimer = setTimeout(() => box.replaceChildren(), LINGER_S * 1000);
  report();
}

function next() {
  pump = null;
  if (dark || !queue.length) return;
  const cue = queue[0];
  const due = Math.max(
    cue.spoken_at ? (cue.spoken_at + delay - serverNow()) * 1000 : 0,
    shownAt ? step() * 1000 - (performance.now() - shownAt) : 0,
  );
  if (due > 0) {
    pump = setTimeout(next, due);
    return;
  }
  show(queue.shift());
  if (queue.length) pump = setTimeout(next, step() * 1000);
}

function step() { return queue.length > ROWS ? CATCH_UP_S : STEP_S; }

function blank(on) {
  dark = on;
  document.body.dataset.blanked = on ? "1" : "0";
  if (on) {
    queue.length = 0;
    box.replaceChildren();
    clearTimeout(pump);
    pump = null;
  }
  report();
}

/** The clerk protected a name or hid words: lines held for the delayed broadcast, and those on
 * screen, were masked without them. They go; the lines after come masked anew. */
function withdraw() {
  queue.length = 0;
  box.replaceChildren();
  clearTimeout(pump);
  pump = null;
}

function pct(xs, q) {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((q / 100) * s.length))];
}

function report() {
  const f = (x) => (Number.isFinite(x) ? `${x.toFixed(1)} s` : "—");
  operator.textContent = `字幕延迟 最近 ${f(latencies.at(-1))} · 中位 ${f(pct(latencies, 50))} · p95 ${f(pct(latencies, 95))}` +
    ` · 句末 p95 ${f(pct(endLatencies, 95))} · ${latencies.length} 行${dark ? " · 已屏蔽" : ""}`;
  window.captionLatencies = latencies; // the operator's numbers, also read by the latency benchmark
  window.captionEndLatencies = endLatencies;
  window.captionLines = lineLog;
}

if (!hearingId) {
  operator.hidden = false;
  operator.textContent = "请指定庭审：/ui/captions?hearing=…";
} else {
  report();
  const feed = `/v1/hearings/${encodeURIComponent(hearingId)}/captions?prefix=${params.get("prefix") === "1"}`;
  liveSocket(() => feed + (airedTo === null ? "" : `&since_ms=${airedTo}`), {
    onEvent(e) {
      if (e.type === "subscribed" || e.type === "blank") blank(!!e.blanked);
      else if (e.type === "withdraw") withdraw();
      else if (e.type === "error") said = e.code;
      else if (e.type === "cue" && !dark && airing.fresh(e)) {
        heard(e);
        queue.push(e);
        if (!pump) next();
      }
    },
    onState(state, e) {
      if (state === "open" && wasOpen) airing.reconnected();
      wasOpen ||= state === "open";
      document.body.dataset.connection = state;
      const why = e && closedFor(e.code, said);
      if (why) { // refused for good: the operator reads why (an empty overlay looks like silence)
        operator.hidden = false;
        operator.textContent = why;
        document.body.dataset.refused = "1";
      }
    },
  });
}
