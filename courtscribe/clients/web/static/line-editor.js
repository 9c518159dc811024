// Corrections on the clerk's screen: Enter edits the selected line in place (Tab to the next
// doubtful word), C confirms it as it reads, Ctrl+Enter splits it at the caret and M merges it
// with the next line of its channel, for sentences or speakers the VAD ran together or cut apart.
// An edit shows at once and is saved in the background; a save the record refuses because the
// line changed meanwhile gives her text back to compare. Nothing overwrites words she has not seen.
import { api, el } from "./common.js";
import { tokenSpans } from "./line-text.js";

const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;
const lineItem = (uid) => document.querySelector(`li[data-uid="${CSS.escape(uid)}"]`);

/**
 * ``ctx``: base (the hearing's API path), utterances (the screen's lines), unstored (uid → why
 * the store did not write its final), selected() and status() (the page's), select(uid),
 * render(uid), touch(uid) (a change made here), notice(text, sticky), changed(uid, utterance)
 * and removed(uid, mergedInto) (a line as the store answered), forgetReadBack() (sign-off.js).
 */
export function lineEditor(ctx) {
  const { base, utterances, unstored } = ctx;
  let editing = null; // the uid of the line she is editing
  // the line's text when her correction began (entries are replaced as events come)
  let editBase = null;

  /** ``text``: hers to go on with (a save refused because the line changed while she typed). */
  function start(text) {
    const uid = ctx.selected();
    if (!uid || ctx.status() === "signed") return;
    const entry = utterances.get(uid);
    const li = lineItem(uid);
    if (!entry || !li) return;
    editing = uid;
    // what she corrects: the server refuses a save over a line that changed meanwhile (a failed
    // save's text on the line is hers, not the record's: it keeps the text that save began from)
    editBase = entry.unsaved ? entry.base : entry.u.text;
    const box = el("textarea", { class: "editor", rows: 2, "aria-label": "修改这一行" });
    box.value = text ?? entry.u.text;
    li.querySelector(".text").replaceWith(box);
    box.focus();
    box.addEventListener("keydown", (ev) => {
      const plain = !ev.shiftKey && !ev.ctrlKey;
      if (ev.key === "Enter" && plain) { ev.preventDefault(); save(box.value); }
      else if (ev.key === "Escape") { ev.preventDefault(); end(); }
      else if (ev.key === "Tab") { ev.preventDefault(); nextLowWord(box, entry.u); }
      else if (ev.key === "Enter" && ev.ctrlKey) { ev.preventDefault(); splitHere(box); }
    });
  }

  /** Select the next low-confidence token after the caret (past a selected word), wrapping. */
  function nextLowWord(box, u) {
    const spans = tokenSpans(box.value, u.tokens).filter(([, , low]) => low);
    const { selectionStart: a, selectionEnd: b } = box;
    const from = b > a ? a + 1 : a;
    const next = spans.find(([a]) => a >= from) || spans[0];
    if (next) box.setSelectionRange(next[0], next[1]);
  }

  function end() {
    const uid = editing;
    editing = null;
    const entry = utterances.get(uid);
    if (entry && entry.heldEmpty && entry.status === "partial") { // no words came, and she drops it
      utterances.delete(uid);
      ctx.touch(uid);
    }
    ctx.render(uid);
    $("lines").focus();
  }

  /** The line ``uid`` left the screen (merged on another screen, no words in it). */
  function lineGone(uid) {
    if (editing !== uid) return;
    editing = null;
    $("lines").focus();
    ctx.notice("正在修改的这一行已被合并或删除，修改未保存", true);
  }

  async function save(text) {
    const uid = editing;
    const entry = utterances.get(uid);
    // the edit shows at once and is saved in the background; a final arriving meanwhile keeps it
    entry.u = { ...entry.u, text };
    // a line the store has not got (a partial; a final it failed to write) goes in with its place
    // and speaker, her choice of speaker included
    const place = entry.status === "partial" || unstored.has(uid) || entry.unplaced;
    entry.status = "edited";
    ctx.touch(uid);
    end();
    entry.base = editBase; // kept on the line should this save fail
    const body = { text, base: editBase };
    const pending = entry.pendingSpeaker;
    if (place) {
      const { channel: ch, start_ms, end_ms, speaker, role, participant } = entry.u;
      Object.assign(body, { channel: ch, start_ms, end_ms, speaker, role, participant });
      entry.pendingSpeaker = null; // sent with the text
    }
    try {
      ctx.changed(uid, await api(`${base}/utterances/${enc(uid)}`, { method: "PATCH", body }));
      return true;
    } catch (err) {
      const now = utterances.get(uid) || entry;
      if (place) { now.unplaced = true; now.pendingSpeaker = pending; }
      if (err.code === "changed_meanwhile") return changedMeanwhile(uid, text);
      // the line says so (and sign-off sees it differs) until a save succeeds
      now.unsaved = err.message;
      ctx.render(uid);
      ctx.notice(`修改未保存：${err.message}`, true);
      return false;
    }
  }

  /** C: she has checked the line as it reads, who said it too; its warnings are answered. */
  async function confirm() {
    const uid = ctx.selected();
    if (!uid || ctx.status() === "signed") return;
    const entry = utterances.get(uid);
    if (!entry) return;
    if (entry.status === "partial" || unstored.has(uid)) {
      ctx.notice("这一行还不在笔录中：识别完成（或按 Enter 保存）后再确认", true);
      return;
    }
    try {
      const u = await api(`${base}/utterances/${enc(uid)}/confirm`, { method: "POST" });
      ctx.changed(uid, u);
      // what was read back is not the record any more
      if (ctx.status() === "closed" && ctx.forgetReadBack()) {
        ctx.notice("已确认这一行。笔录已有变更：请重新“核对朗读”后再签名", true);
      } else ctx.notice("已确认这一行");
    } catch (err) { ctx.notice(`确认未完成：${err.message}`, true); }
  }

  /** Her save met a line that changed while she typed (its final came in, another screen corrected
   * it): the line shows what the record holds now, and her text goes back into the editor to
   * compare, keep (Enter) or drop (Esc). */
  async function changedMeanwhile(uid, mine) {
    try {
      ctx.changed(uid, await api(`${base}/utterances/${enc(uid)}`));
    } catch (err) {
      ctx.notice(`修改未保存，这一行也未能重新读取：${err.message}`, true);
      return false;
    }
    const now = utterances.get(uid).u.text;
    if (editing === null && ctx.status() !== "signed") {
      ctx.select(uid);
      start(mine);
      ctx.notice(`这一行在您修改时已变为「${now}」，您的修改未保存：仍在编辑框中，Enter 保存，Esc 放弃`, true);
    } else ctx.notice(`这一行在您修改时已变为「${now}」，您的修改「${mine}」未保存`, true);
    return false;
  }

  // Split and merge take only lines whose final is in; the server cuts the time at the engine's
  // word times and says so to every screen.
  async function splitHere(box) {
    const uid = editing;
    const entry = utterances.get(uid);
    if (entry.status === "partial") { ctx.notice("这一行还在识别中，识别完成后再拆分", true); return; }
    // characters (not UTF-16 units), as the server counts them
    const at = [...box.value.slice(0, box.selectionStart)].length;
    if (box.value !== entry.u.text) {
      if (!(await save(box.value))) return; // cut the record's text, never her unsaved one
    } else end();
    try {
      const split = { method: "POST", body: { at } };
      const res = await api(`${base}/utterances/${enc(uid)}/split`, split);
      res.utterances.forEach((u) => ctx.changed(u.id, u));
      ctx.select(res.utterances[1].id);
    } catch (err) { ctx.notice(`拆分未完成：${err.message}`, true); }
  }

  async function mergeNext() {
    const uid = ctx.selected();
    if (!uid || ctx.status() === "signed") return;
    // the next line of the same channel, searched or not: merging joins a sentence cut at a pause
    const all = [...$("lines").children];
    const at = all.findIndex((li) => li.dataset.uid === uid);
    const next = at < 0 ? null
      : all.slice(at + 1).find((li) => li.dataset.channel === all[at].dataset.channel);
    if (!next) { ctx.notice("下面没有可以合并的行"); return; }
    if (unmergeable(utterances.get(uid), utterances.get(next.dataset.uid))) return;
    try {
      const body = { other: next.dataset.uid };
      const res = await api(`${base}/utterances/${enc(uid)}/merge`, { method: "POST", body });
      ctx.removed(res.removed, res.utterance.id);
      ctx.changed(res.utterance.id, res.utterance);
      ctx.select(res.utterance.id);
    } catch (err) { ctx.notice(`合并未完成：${err.message}`, true); }
  }

  /** Why two lines are not merged, said in Chinese before the server refuses it in English. */
  function unmergeable(a, b) {
    if (!a || !b) return false;
    const partial = [a, b].some((x) => x.status === "partial");
    const unheard = [a, b].some((x) => (x.u.flags || []).includes("unrecognized") && !x.u.text.trim());
    const why = partial ? "这一行还在识别中，识别完成后再合并"
      : a.u.speaker !== b.u.speaker
        ? `两行的发言人不同（${a.u.speaker}、${b.u.speaker}）：如是同一人所说，先把两行改为同一发言人（S）再合并`
        : unheard ? "有一行未能识别：先回放并录入所说内容，再合并（合并后空白将不再显示）" : null;
    if (why) ctx.notice(why, true);
    return !!why;
  }

  return { editing: () => editing, start, lineGone, confirm, mergeNext };
}
