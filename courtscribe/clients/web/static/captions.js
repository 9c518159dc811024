// Caption overlay for a livestream (庭审直播), made for an OBS browser source.
// Query: hearing=ID, prefix=1 (role before the words), delay=S (seconds the broadcast video runs behind
// the courtroom: a cue shows S s after it was spoken, never before it arrives), operator=1 (latency panel).
// Cues come ready-cut from the server (two lines of at most 16 characters); this page only paces them.
import { liveSocket, params } from "./common.js";

const hearingId = params.get("hearing");
const delay = Number(params.get("delay") || 0);
const MIN_HOLD_S = 1.5; // a cue stays at least this long so it can be read
const LINGER_S = 4; // and clears this long after the last one if nobody speaks
const box = document.getElementById("caption-box");
const operator = document.getElementById("operator");
operator.hidden = params.get("operator") !== "1";

const queue = [];
const latencies = []; // speech end → first cue of the utterance on screen (s)
let dark = false;
let showingSince = 0;
let clearTimer = null;
let pump = null;

function show(cue) {
  box.replaceChildren(...cue.lines.map((text) => {
    const div = document.createElement("div");
    div.className = "cap";
    div.textContent = text;
    const wrap = document.createElement("div");
    wrap.append(div);
    return wrap;
  }));
  showingSince = performance.now();
  if (cue.id.endsWith(".0") && cue.speech_end_at) {
    latencies.push(Date.now() / 1000 - cue.speech_end_at);
    document.body.dataset.shown = String(latencies.length);
  }
  clearTimeout(clearTimer);
  clearTimer = setTimeout(() => box.replaceChildren(), (MIN_HOLD_S + LINGER_S) * 1000);
  report();
}

function next() {
  pump = null;
  if (dark || !queue.length) return;
  const cue = queue[0];
  const due = Math.max(
    cue.spoken_at ? (cue.spoken_at + delay) * 1000 - Date.now() : 0,
    showingSince ? MIN_HOLD_S * 1000 - (performance.now() - showingSince) : 0,
  );
  if (due > 0) {
    pump = setTimeout(next, due);
    return;
  }
  show(queue.shift());
  pump = setTimeout(next, MIN_HOLD_S * 1000);
}

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

function pct(xs, q) {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((q / 100) * s.length))];
}

function report() {
  const f = (x) => (Number.isFinite(x) ? `${x.toFixed(1)} s` : "—");
  operator.textContent = `字幕延迟 最近 ${f(latencies.at(-1))} · 中位 ${f(pct(latencies, 50))} · p95 ${f(pct(latencies, 95))}` +
    ` · ${latencies.length} 句${dark ? " · 已屏蔽" : ""}`;
  window.captionLatencies = latencies; // the operator's numbers, also read by the latency benchmark
}

if (!hearingId) {
  operator.hidden = false;
  operator.textContent = "请指定庭审：/ui/captions?hearing=…";
} else {
  report();
  liveSocket(`/v1/hearings/${encodeURIComponent(hearingId)}/captions?prefix=${params.get("prefix") === "1"}`, {
    onEvent(e) {
      if (e.type === "subscribed" || e.type === "blank") blank(!!e.blanked);
      else if (e.type === "cue" && !dark) {
        queue.push(e);
        if (!pump) next();
      }
    },
    onState(state) { document.body.dataset.connection = state; },
  });
}
