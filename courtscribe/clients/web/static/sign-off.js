// Sign-off on the clerk's screen: closing the hearing, the read-back that fixes what is signed,
// the signature dialog, and the signers panel (every required signer, in any order; the first
// signature locks the text). A signature the record refuses leads her to the line in question.
import { ROLES, api, clock, el } from "./common.js";
import { who } from "./line-text.js";

const $ = (id) => document.getElementById(id);
const SIGN_STATE = { signed: "已签名", pending: "待签名", refused: "拒绝签名" };

/**
 * ``ctx``: base (the hearing's API path), utterances (the screen's lines), status() (the hearing's
 * stage), setStatus(s), select(uid), backfill() (the record, again, onto the screen),
 * notice(text, sticky).
 */
export function signing(ctx) {
  const { base, utterances } = ctx;
  let me = null; // GET /v1/whoami: signs_as null when tokens are off
  let readBack = null; // the record's digest when the read-back began (a promise)

  async function showSigners() {
    if (!me) me = await api("/v1/whoami").catch(() => ({ signs_as: null, may: [] }));
    const { signers, complete } = await api(`${base}/signatures`);
    const closed = ctx.status() === "closed" || ctx.status() === "signed"; // read back by now
    $("signers").replaceChildren(...signers.map((x) => {
      const when = x.at ? ` ${new Date(x.at).toLocaleTimeString("zh-CN", { hour12: false })}` : "";
      const li = el("li", { class: x.state, dataset: { role: x.role } },
        `${x.role_label}${x.name ? " " + x.name : ""}`,
        el("small", {}, ` ${SIGN_STATE[x.state]}${when}${x.reason ? "：" + x.reason : ""}`));
      if (x.party && x.state === "pending" && closed && me.may.includes("edit") && x.name) {
        const note = (cls, refused, label) =>
          el("button", { type: "button", class: cls, onclick: () => noteParty(x, refused) }, label);
        li.append(note("party-signed", false, "已签"), note("party-refused", true, "拒签"));
      }
      return li;
    }));
    // the token's holder signs once; without tokens anyone signs until no one is pending
    const byMe = (x) => x.state === "signed" && x.name === me.name && me.signs_as.includes(x.role);
    const mine = me.signs_as ? signers.some(byMe) : complete;
    $("sign").disabled = ctx.status() === "signed"
      ? mine || (me.signs_as !== null && !me.signs_as.length) : false;
  }

  /** A party signed the paper record, or refused to (and why): the clerk notes it. */
  async function noteParty(x, refused) {
    const reason = refused ? window.prompt(`${x.role_label} ${x.name} 拒绝签名的情况`) : null;
    if (refused && !reason) return;
    try {
      await api(`${base}/party-signatures`,
                { method: "POST", body: { name: x.name, role: x.role, refused, reason } });
      await showSigners();
    } catch (err) { ctx.notice(`未记下：${err.message}`, true); }
  }

  /** The read-back view opened: what is signed is the record as read back now (after 闭庭 only:
   * closing stamps the record, and lines still come while the hearing is open). */
  function beginReadBack() {
    readBack = ctx.status() === "closed"
      ? api(`${base}/digest`).then((r) => r.digest).catch(() => null) : null;
  }

  /** A line changed after the read-back: it is read again before signing. Whether one was begun. */
  function forgetReadBack() {
    const had = readBack !== null;
    readBack = null;
    return had;
  }

  async function signOff() {
    const status = ctx.status();
    if (status === "open" || status === "scheduled") { // two steps: the record is read back between
      try {
        ctx.setStatus((await api(`${base}/close`, { method: "POST" })).status);
        ctx.notice("已闭庭：请核对朗读笔录，核对无误后再签名", true);
      } catch (err) { ctx.notice(`闭庭未完成：${err.message}`, true); }
      return;
    }
    // with tokens the signer is the token's holder, in a role the token holds
    const whoami = await api("/v1/whoami").catch(() => ({ signs_as: null }));
    const roles = Object.entries(ROLES)
      .filter(([id]) => !whoami.signs_as || whoami.signs_as.includes(id));
    const options = roles.map(([id, label]) => el("option", { value: id }, label));
    $("sign-role").replaceChildren(...options);
    $("sign-role").value = whoami.signs_as ? whoami.signs_as[0] : "clerk";
    if (whoami.signs_as) { $("sign-name").value = whoami.name; $("sign-name").readOnly = true; }
    const dialog = $("sign-dialog");
    dialog.onclose = async () => {
      if (dialog.returnValue !== "ok") return;
      try { await sign(); } catch (err) { signRefused(err); }
    };
    dialog.returnValue = ""; // an Esc keeps the last value: not a signature
    dialog.showModal();
  }

  async function sign() {
    // what is signed is what was read back (else what this screen shows): the server refuses a
    // record changed after that digest, so a correction made during the read-back is read again
    const heard = readBack && await readBack;
    if (!heard && ctx.status() === "closed") { // the first signature binds what was read back
      ctx.notice("请先点“核对朗读”，向当事人宣读核对笔录后再签名", true);
      return;
    }
    // (once signed, the record no longer changes: its digest now is the one signed)
    const digest = heard || (await api(`${base}/digest`)).digest;
    const differ = await differences();
    if (differ.length) {
      await ctx.backfill();
      const first = pointAt(differ);
      ctx.notice(`屏幕上有 ${differ.length} 行与记录不一致（未识别完、未保存、未存入笔录或刚被更改）：已刷新`
                 + `${first ? `，已选中${lineName(first)}` : ""}。请核对后再签名`, true);
      return;
    }
    const body = { by: $("sign-name").value, role: $("sign-role").value, digest };
    const signed = await api(`${base}/signatures`, { method: "POST", body });
    ctx.setStatus(signed.status);
    ctx.notice(`已签名，笔录摘要 ${signed.digest.slice(0, 12)}…`);
  }

  /** The record refused the signature over one line (its ``utterance_id``): she is taken to it. */
  function signRefused(err) {
    const uid = err.detail?.utterance_id;
    if (!uid || !utterances.has(uid)) { ctx.notice(`签名失败：${err.message}`, true); return; }
    pointAt([uid]);
    const why = /heard otherwise/.test(err.message) ? "在您修改后收到了不同的识别结果" : "尚待核对";
    ctx.notice(`签名未完成：${lineName(uid)}${why}。请核听后按 C 确认本行（或按 Enter 修改），`
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
    ctx.select(lis[0].dataset.uid);
    lis[0].scrollIntoView({ block: "center" });
    $("lines").focus({ preventScroll: true }); // her next key (Enter, C) acts on it
    return lis[0].dataset.uid;
  }

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

  return { showSigners, signOff, beginReadBack, forgetReadBack };
}
