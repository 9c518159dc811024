// Shared by every page: the token, API calls, event sockets that reconnect, hearing-time clocks.
// The token comes in the URL fragment (#token=…), which browsers never send to a server; it is kept in
// this tab's sessionStorage and the fragment is removed so it does not linger in the address bar.

const KEY = "courtscribe-token";

export const token = (() => {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(KEY);
})();

export const params = new URLSearchParams(location.search);

/** What a person reads when the server turns the page's token away (HTTP 401/403, socket 4401/4403). */
export function refusal(status) {
  if (status === 401 || status === 4401) {
    return token ? "令牌无效、已吊销或已过期：请向信息中心重新领取，地址后加 #token=…"
      : "请登录：地址后加 #token=…";
  }
  return "此令牌无权查看这里（另一法院、法庭或角色）";
}

/** Why the server closed a page's live socket for good (4401/4403/4404, with the error it gave
 * before), in Chinese; null where it may come back. */
export function closedFor(code, said) {
  if (code === 4403 && said === "not_public") return "此庭审不公开审理：没有直播字幕";
  if (code === 4401 || code === 4403) return refusal(code);
  if (code === 4404) return "没有这个庭审：编号有误，或它属于另一法院";
  return null;
}

export class ApiError extends Error {
  constructor(status, code, message, detail) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = detail; // a 422's list of {loc, msg}: a form shows each at its field
  }
}

function authHeaders(extra = {}) {
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

/** Fetch a JSON API; the error a server gave is thrown as ApiError with its code and message. */
export async function api(path, { method = "GET", body, raw = false } = {}) {
  const init = { method, headers: authHeaders(body !== undefined ? { "Content-Type": "application/json" } : {}) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  if (!res.ok) {
    let answer = {};
    try { answer = await res.json(); } catch { /* not JSON: a proxy's error page */ }
    const { detail, message } = errorOf(answer);
    const said = answer?.error; // OpenAI's {error: {code}}, or an older route's {error: "code"}
    const code = detail.code || said?.code || (typeof said === "string" ? said : null);
    const status = `HTTP ${res.status}${res.statusText ? " " + res.statusText : ""}`;
    throw new ApiError(res.status, code || `http_${res.status}`, message || status, detail);
  }
  return raw ? res : res.json();
}

/** What an error answer says, in whichever shape it came: ours (``detail``: {code, message}, or a
 * 422's list), OpenAI's (``error.message``), a plain {error, message}. ``detail`` is always an
 * object or list; ``message`` may be empty (then the page says the HTTP status). */
function errorOf(body) {
  if (!body || typeof body !== "object") return { detail: {}, message: "" };
  let detail = body.detail ?? {};
  if (typeof detail === "string") detail = { message: detail };
  const text = (x) => (typeof x === "string" && x.trim() ? x : "");
  const message = text(detail.message) || text(body.error?.message) || text(body.message)
    || (Array.isArray(detail) && detail.length ? text(detail[0].msg) : "");
  return { detail: typeof detail === "object" && detail ? detail : {}, message };
}

/** Save what an endpoint returns as a file (exports), keeping the server's file name. */
export async function download(path, init = {}) {
  const res = await api(path, { ...init, raw: true });
  const disposition = res.headers.get("Content-Disposition") || "";
  const star = disposition.match(/filename\*=UTF-8''([^;]+)/);
  const plain = disposition.match(/filename="([^"]+)"/);
  const name = star ? decodeURIComponent(star[1]) : plain ? plain[1] : "export";
  const url = URL.createObjectURL(await res.blob());
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return name;
}

/**
 * A WebSocket that comes back: after a drop it reconnects (0.5 s, doubling to 5 s) and calls onOpen
 * again, where a page backfills what it missed. onState(state) gets "open" | "down".
 */
export function liveSocket(path, { onEvent, onOpen = () => {}, onState = () => {} }) {
  let ws = null;
  let delay = 500;
  let stopped = false;
  // ``path`` may be a function: asked again at each reconnect (a feed told where the page left off)
  const url = () => `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`
    + (typeof path === "function" ? path() : path);
  const connect = () => {
    ws = new WebSocket(url(), token ? ["courtscribe.v1", `bearer.${token}`] : ["courtscribe.v1"]);
    ws.onmessage = (m) => {
      const event = JSON.parse(m.data);
      if (event.type === "subscribed") {
        delay = 500;
        onState("open");
        onOpen(event);
      }
      onEvent(event);
    };
    ws.onclose = (e) => {
      if (stopped) return;
      onState("down", e);
      if (closedFor(e.code)) return; // refused, or no such hearing: reconnecting cannot help
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 5000);
    };
  };
  connect();
  return { close() { stopped = true; ws && ws.close(); }, get socket() { return ws; } };
}

/** Hearing time as HH:MM:SS. */
export function clock(ms) {
  const s = Math.floor(ms / 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}

/** Courtroom roles, id → label (审判长 …), from the server: one list for the record, the API and the pages. */
export const ROLES = await (await fetch("/ui/roles.json")).json();

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.filter((c) => c !== undefined && c !== null));
  return node;
}
