// The court's front page: schedule a hearing, find one (by 案号, party, words said, status, date) and
// open it. Offers only what this token may do (GET /v1/whoami's `may`); the server decides anyway.
import { ApiError, ROLES, api, download, el, refusal } from "./common.js";

const STATUS = { scheduled: "未开庭", open: "庭审中", closed: "已闭庭", signed: "已签名" };
const ROWS = {
  parties: { roles: ["plaintiff", "defendant", "third_party", "plaintiff_agent", "defendant_agent", "prosecutor", "accused", "defender", "victim", "witness", "other"], label: "当事人" },
  bench: { roles: ["presiding_judge", "judge", "juror", "clerk"], label: "审判人员" },
};
const PAGE = 20;
const $ = (id) => document.getElementById(id);
let me = { may: [] };
let printed = []; // the printed forms the server writes (GET /v1/formats): a button each
let offset = 0;

function banner(text) {
  $("banner").textContent = text;
  $("banner").hidden = !text;
}

const beijing = (iso) => iso ? new Date(iso).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false,
  year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" }) : "";

// -- the schedule form --------------------------------------------------------------------------
function roleSelect(roles, label, value) {
  return el("select", { "aria-label": label }, ...roles.map((r) => el("option", { value: r, selected: r === value }, ROLES[r])));
}

function addRow(kind, value = {}) {
  const list = $(`rows-${kind}`).querySelector(".rows");
  const n = list.children.length + 1;
  const remove = el("button", { type: "button", class: "remove", "aria-label": `删除${kind === "channels" ? "通道" : ROWS[kind].label} ${n}` }, "删除");
  let row;
  if (kind === "channels") {
    row = el("li", {}, el("input", { type: "number", min: 0, max: 63, value: value.channel ?? n - 1, "aria-label": `通道 ${n} 编号` }),
      roleSelect(ROWS.bench.roles.concat(ROWS.parties.roles), `通道 ${n} 角色`, value.role || "presiding_judge"), remove);
  } else {
    const { roles, label } = ROWS[kind];
    // a party who is a minor, a victim or a protected witness: masked (张某) in captions and the public version
    const guard = kind === "parties" ? el("label", { class: "protected" }, el("input", { type: "checkbox",
      "aria-label": `${label} ${n} 受保护`, ...(value.protected ? { checked: "" } : {}) }), " 受保护") : null;
    row = el("li", {}, roleSelect(roles, `${label} ${n} 身份`, value.role || roles[0]),
      el("input", { type: "text", "aria-label": `${label} ${n} 姓名`, maxlength: 128, value: value.name || "" }), guard, remove);
  }
  remove.addEventListener("click", () => row.remove());
  list.append(row);
  return row;
}

function formBody() {
  const v = (name) => $(`f-${name}`).value.trim() || null;
  const when = $("f-scheduled_at").value;
  const people = ["parties", "bench"].flatMap((kind) => [...$(`rows-${kind}`).querySelectorAll("li")].map((li) => ({
    role: li.querySelector("select").value, name: li.querySelector("input[type=text]").value.trim() || null,
    protected: Boolean(li.querySelector("input[type=checkbox]")?.checked),
  }))).filter((p) => p.name);
  const channels = Object.fromEntries([...$("rows-channels").querySelectorAll("li")].map((li) =>
    [li.querySelector("input").value, li.querySelector("select").value]));
  return {
    case_number: v("case_number"), cause: v("cause"), title: v("title"), courtroom: v("courtroom"),
    scheduled_at: when ? `${when}:00+08:00` : null, public: $("f-public").checked, // courts keep Beijing time
    participants: people, channels,
  };
}

function clearErrors() {
  for (const e of document.querySelectorAll("#schedule .error")) e.textContent = "";
  for (const i of document.querySelectorAll("#schedule [aria-invalid]")) i.removeAttribute("aria-invalid");
}

/** A 422 from the API, said at the field it is about (FastAPI's `loc`: ["body", field, …]). */
function showFieldErrors(detail) {
  let first = null;
  for (const d of detail) {
    const field = { participants: "parties" }[d.loc?.[1]] || d.loc?.[1];
    const span = $(`e-${field}`) || $("e-case_number");
    span.textContent = (d.msg || "").replace(/^Value error, /, "");
    const input = $(`f-${field}`);
    if (input) {
      input.setAttribute("aria-invalid", "true");
      first = first || input;
    }
  }
  (first || $("f-case_number")).focus();
}

async function schedule(ev) {
  ev.preventDefault();
  clearErrors();
  $("scheduled").textContent = "";
  if (!$("f-case_number").value.trim() && !$("f-title").value.trim()) {
    $("e-title").textContent = "请填写案号或标题";
    $("f-title").setAttribute("aria-invalid", "true");
    $("f-title").focus();
    return;
  }
  let made;
  try {
    made = await api("/v1/hearings", { method: "POST", body: formBody() });
  } catch (err) {
    if (err.status === 422 && Array.isArray(err.detail)) showFieldErrors(err.detail);
    else if (err.status === 422 && err.detail.field) showFieldErrors([{ loc: ["body", err.detail.field], msg: err.message }]);
    else banner(`排期未成功：${err.message}`);
    return;
  }
  banner("");
  $("scheduled").textContent = `已排期：${made.case_number || made.title}（${made.id}）`;
  $("schedule-form").reset();
  resetRows();
  $("q").value = made.case_number || made.id;
  offset = 0;
  await find();
}

function resetRows() {
  for (const kind of ["parties", "bench", "channels"]) $(`rows-${kind}`).querySelector(".rows").replaceChildren();
  addRow("parties", { role: "plaintiff" });
  addRow("parties", { role: "defendant" });
  addRow("bench", { role: "presiding_judge" });
  addRow("bench", { role: "clerk" });
  if (me.room) $("f-courtroom").value = me.room;
}

// -- the list -----------------------------------------------------------------------------------
function links(h) {
  const q = `?hearing=${encodeURIComponent(h.id)}`;
  const may = (a) => me.may.includes(a);
  const out = [];
  if (may("read")) {
    out.push(el("a", { href: `/ui/clerk${q}` }, "书记员屏幕"), el("a", { href: `/ui/clerk${q}&readback=1` }, "宣读核对"));
  }
  if (h.public && may("caption")) out.push(el("a", { href: `/ui/captions${q}&operator=1` }, "字幕"));
  if (may("export")) {
    for (const f of printed) {
      const path = `/v1/hearings/${encodeURIComponent(h.id)}/export?format=${f.format}`;
      out.push(el("button", { type: "button", class: "link", onclick: () => download(path).catch((err) => banner(err.message)) },
        f.extension.toUpperCase()));
    }
  }
  return out;
}

function row(h) {
  const title = el("td", {}, h.title || "");
  if (h.match) title.append(el("div", { class: "match" }, `“${h.match.text}”`));
  return el("tr", { dataset: { id: h.id } }, el("td", {}, h.case_number || ""), el("td", {}, h.cause || ""), title,
    el("td", {}, h.courtroom || ""), el("td", {}, beijing(h.scheduled_at || h.opened_at)),
    el("td", {}, STATUS[h.status] || h.status), el("td", {}, h.public ? "公开" : "不公开"),
    el("td", {}, h.correction_requests ? el("strong", { class: "requests" }, `${h.correction_requests} 件待处理`) : ""),
    el("td", { class: "open" }, ...links(h)));
}

async function find(ev) {
  if (ev) {
    ev.preventDefault();
    offset = 0;
  }
  const query = new URLSearchParams([...new FormData($("find"))].filter(([, v]) => v));
  query.set("limit", PAGE);
  query.set("offset", offset);
  $("count").dataset.busy = "1";
  try {
    const { data, total } = await api(`/v1/hearings?${query}`);
    $("hearings").querySelector("tbody").replaceChildren(...data.map(row));
    $("count").textContent = total ? `共 ${total} 个庭审` : "没有符合条件的庭审";
    $("page-no").textContent = `第 ${offset / PAGE + 1} 页，共 ${Math.max(1, Math.ceil(total / PAGE))} 页`;
    $("prev").disabled = offset === 0;
    $("next").disabled = offset + PAGE >= total;
  } catch (err) {
    banner(err instanceof ApiError && err.status === 401 ? refusal(401) : `无法读取庭审列表：${err.message}`);
    $("count").textContent = "—";
  } finally {
    delete $("count").dataset.busy;
  }
}

// -- start --------------------------------------------------------------------------------------
try {
  me = await api("/v1/whoami");
  printed = (await api("/v1/formats")).formats.filter((f) => f.on_page);
  $("me").textContent = `${me.name}${me.court ? ` · ${me.court}` : ""}${me.room ? ` · ${me.room}` : ""}`;
} catch (err) {
  banner(err instanceof ApiError && err.status === 401 ? refusal(401) : `无法识别身份：${err.message}`);
}
if (me.may.includes("manage")) {
  $("schedule").hidden = false;
  if (me.room) $("f-courtroom").readOnly = true; // a room's token schedules in its room
  resetRows();
  for (const b of document.querySelectorAll("button.add")) {
    b.addEventListener("click", () => addRow(b.dataset.rows).querySelector("input, select").focus());
  }
  $("schedule-form").addEventListener("submit", schedule);
}
if (me.may.includes("dictate") && ["judge", "admin"].includes(me.role)) {
  $("me").after(el("a", { href: "/ui/dictation", class: "dictation" }, "法官语音录入"));
}
$("find").addEventListener("submit", find);
$("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); find(); });
$("next").addEventListener("click", () => { offset += PAGE; find(); });
await find();
