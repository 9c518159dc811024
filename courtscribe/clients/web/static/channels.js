// The clerk's channel panel: each microphone's state, level meter and how long it has been silent.
import { el } from "./common.js";

const SILENT_DB = -60;
// channel → {speaker, connected, rms, peak, voiceAt: last speech (ms since epoch)}
const channels = new Map();

export const knownChannels = () => [...channels.keys()];

/** What is now known of channel ``ch``: a level, its connection, speech heard on it. */
export function channel(ch, change) {
  const was = channels.get(ch)
    || { speaker: null, connected: false, rms: -90, peak: -90, voiceAt: null };
  channels.set(ch, { ...was, ...change, speaker: change.speaker || was.speaker });
  channelStatus();
}

function row(ch, c, now) {
  const quiet = c.voiceAt ? Math.round((now - c.voiceAt) / 1000) : null;
  const state = !c.connected ? "已断开" : quiet !== null && quiet < 3 ? "有声音"
    : quiet === null ? "已连接" : `静默 ${quiet} 秒`;
  const cls = !c.connected ? "down" : c.rms <= SILENT_DB ? "quiet" : "live";
  return el("li", { class: cls, dataset: { channel: ch } },
    el("span", { class: "name" }, `通道 ${ch}${c.speaker ? " " + c.speaker : ""}`),
    el("meter", { min: -60, max: 0, low: -40, high: -6, optimum: -20,
                  value: Math.max(-60, c.rms), "aria-label": `通道 ${ch} 电平`,
                  title: `电平 ${c.rms.toFixed(0)} dBFS，峰值 ${c.peak.toFixed(0)} dBFS` }),
    el("span", { class: "state" }, state));
}

export function channelStatus() {
  const now = Date.now();
  const sorted = [...channels.entries()].sort((a, b) => a[0] - b[0]);
  document.getElementById("channels").replaceChildren(...sorted.map(([ch, c]) => row(ch, c, now)));
}
