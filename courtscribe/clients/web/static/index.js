// The landing page: the hearings this token may see, with links to the clerk screen and the caption overlay.
import { api, el } from "./common.js";

const STATUS = { scheduled: "未开庭", open: "庭审中", closed: "已闭庭", signed: "已签名" };

try {
  const { data } = await api("/v1/hearings");
  document.querySelector("#hearings tbody").replaceChildren(...data.map((h) => {
    const q = `?hearing=${encodeURIComponent(h.id)}`;
    return el("tr", {}, el("td", {}, h.title || h.id), el("td", {}, h.courtroom || ""), el("td", {}, STATUS[h.status] || h.status),
      el("td", {}, h.public ? "公开" : "不公开"),
      el("td", {}, el("a", { href: `/ui/clerk${q}` }, "笔录"), " ", h.public ? el("a", { href: `/ui/captions${q}&operator=1` }, "字幕") : null));
  }));
} catch (err) {
  const b = document.getElementById("banner");
  b.textContent = `无法读取庭审列表：${err.message}（地址后加 #token=… 登录）`;
  b.hidden = false;
}
