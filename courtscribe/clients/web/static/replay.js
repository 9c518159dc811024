// Replay of one line on the clerk's screen (a click on its time, or Space): its audio from the
// record, started at the line itself, the line marked while it plays.
import { api, clock } from "./common.js";

const $ = (id) => document.getElementById(id);
const lineItem = (uid) => document.querySelector(`li[data-uid="${CSS.escape(uid)}"]`);

/** No line is marked as playing (the player stopped or ended). */
export function stopHighlight() {
  document.querySelectorAll("li.playing").forEach((li) => li.classList.remove("playing"));
}

/** ``ctx``: base (the hearing's API path), select(uid), notice(text, sticky). */
export function replayer(ctx) {
  let replaying = 0; // the newest replay asked for: an older one's audio never plays over it

  return async function replay(uid) {
    ctx.select(uid);
    const ask = ++replaying;
    const player = $("player");
    try {
      const path = `${ctx.base}/utterances/${encodeURIComponent(uid)}/audio`;
      const res = await api(path, { raw: true });
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
      stopHighlight();
      lineItem(uid)?.classList.add("playing");
      if (cut) ctx.notice(`这一行很长：只回放到 ${clock(Number(cut))}，其余请在录音中核听`, true);
      await player.play();
    } catch (err) {
      if (ask === replaying) ctx.notice(`回放失败：${err.message}`, true);
    }
  };
}
