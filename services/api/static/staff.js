// What every staff page shares: login (once, the token kept for the tab), the header with the
// pages the role may use, API calls, errors shown in the page, live updates, labels and the
// working-time countdowns. Whatever a citizen (or anyone) wrote goes in as text, never HTML.

const TOKEN = "staff-token";

export const NAV = [
  { path: "/agent", label: "坐席工作台", roles: ["agent", "supervisor"] },
  { path: "/desk", label: "派单台", roles: ["agent", "supervisor"] },
  { path: "/unit", label: "承办工作台", roles: ["unit_handler"] },
  { path: "/supervisor", label: "督查督办", roles: ["supervisor"] },
  { path: "/kb", label: "知识库", roles: ["knowledge_editor"] },
  { path: "/admin", label: "系统管理", roles: ["admin"] },
];
export const ROLE_LABELS = {
  agent: "话务坐席", unit_handler: "承办人", supervisor: "督查督办", knowledge_editor: "知识库编辑", admin: "管理员",
};
export const STATUS = {
  awaiting_dispatch: "待派发", dispatched: "待签收", signed: "办理中", contacted: "已联系",
  resolved: "已办结", returned: "已退回", arbitration: "仲裁中", closed: "已归档",
};
export const STATUS_TAG = {
  awaiting_dispatch: "yellow", returned: "red", arbitration: "red", dispatched: "blue",
  signed: "blue", contacted: "blue", resolved: "green", closed: "",
};
export const TYPES = { consult: "咨询", complain: "投诉", seek_help: "求助", suggest: "建议", report: "举报", praise: "表扬" };
export const CHANNELS = { web: "网页", sms: "短信", voice: "电话", wechat: "微信" };
export const POINTS = { dispatch: "派单", sign_for: "签收", contact: "联系", handling: "办结", returned: "退回重派", dissatisfied: "回访不满意" };
export const COLORS = { yellow: "黄灯", red: "红灯" };
export const EVENTS = {
  filed: "受理建单", dispatched: "派发", reassigned: "改派", signed: "签收", contacted: "联系市民",
  resolved: "办结", returned: "退回", sent_to_arbitration: "提请仲裁", arbitrated: "仲裁裁定",
  revisit_satisfied: "回访满意", revisit_no_answer: "回访未接通", revisit_dissatisfied: "回访不满意",
  note: "备注", repeat_linked: "重复诉求", escalated: "升级督办", assist_added: "增加协办",
  suggestion_adopted: "建议采纳", suggestion_not_adopted: "建议未采纳",
};
const ACTORS = { system: "系统", citizen: "市民", bot: "智能客服" };
/** Who did something in an order's history: people by name, the rest by what they are. */
export function actorLabel(e) { return ACTORS[e.actor_role] || e.actor; }
export const OUTCOMES = { satisfied: "满意", basically_satisfied: "基本满意", dissatisfied: "不满意", no_answer: "未接通" };
const ERRORS = {
  unauthorized: "登录已失效，请重新登录", forbidden: "此账号无权执行该操作", not_found: "未找到",
  bad_credentials: "用户名或密码错误", locked: "密码错误次数过多，账号已暂时锁定",
  conflict: "内容已被他人修改，请刷新后重试", version_conflict: "内容已被他人修改，请刷新后重试",
  missing_reason: "请填写理由", missing_note: "请填写联系情况", missing_result: "请填写办理结果",
  missing_password: "请填写密码", missing_username: "请填写用户名", unavailable: "服务暂不可用",
  own_account: "不能停用自己的账号", not_lead: "仅主办单位可以办理",
};

export const $ = (id) => document.getElementById(id);

/** An element: h("button", {class: "primary", onclick: f, dataset: {n: 1}}, "text", child). Strings
 *  become text nodes, so nothing given here is ever parsed as HTML. */
export function h(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && key !== "list" && key !== "form") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace a node's children, skipping the empty ones (null, false) a conditional left. */
export function fill(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((c) => c != null && c !== false));
  return node;
}

export function empty(text) { return h("div", { class: "empty" }, text); }

export class ApiError extends Error {
  constructor(status, body) {
    super(ERRORS[body.error] || body.reason || body.error || "请求失败（" + status + "）");
    this.status = status;
    this.body = body;
  }
}

export function token() { return sessionStorage.getItem(TOKEN); }

export async function api(method, path, body, { raw = false } = {}) {
  const headers = { Authorization: "Bearer " + token() };
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  const resp = await fetch(path, { method, headers, body: payload });
  if (raw && resp.ok) return resp;
  const data = await resp.json().catch(() => ({}));
  if (resp.status === 401 && path !== "/api/auth/me") {
    sessionStorage.removeItem(TOKEN);
    showLogin("登录已失效，请重新登录").then(() => location.reload());
  }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

// -- messages in the page ----------------------------------------------------------------

let flashTimer = null;
export function flash(text, kind = "error") {
  const box = $("flash");
  if (!box) return;
  box.className = "flash " + kind;
  box.textContent = text;
  box.hidden = false;
  clearTimeout(flashTimer);
  if (kind !== "error") flashTimer = setTimeout(() => { box.hidden = true; }, 4000);
}

/** An event handler that shows its failure in the page instead of losing it. */
export function guard(fn) {
  return async (...args) => {
    try { return await fn(...args); } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
      flash(e.message || String(e));
    }
  };
}

// -- times ---------------------------------------------------------------------------------

const pad = (n) => String(n).padStart(2, "0");
// the centre works in China time, wherever the browser is
const CHINA = new Intl.DateTimeFormat("en-CA", {
  timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
});
export function fmtTime(iso) {
  if (!iso) return "—";
  const p = Object.fromEntries(CHINA.formatToParts(new Date(iso)).map((x) => [x.type, x.value]));
  return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute;
}
export function fmtDay(iso) { return iso ? String(iso).slice(0, 10) : "—"; }

function spell(seconds) {
  const s = Math.abs(seconds);
  const days = Math.floor(s / 86400);
  const hours = Math.floor((s % 86400) / 3600);
  const mins = Math.floor((s % 3600) / 60);
  if (days) return days + "个工作日" + (hours ? hours + "小时" : "");
  if (hours) return hours + "小时" + pad(mins) + "分";
  return mins + "分钟";
}

/** The working time left on a clock, counting down in the page (working time passes only on
 *  working days: the server says whether it does now). */
export function due(order, point) {
  const left = (order.time_left || {})[point];
  if (left == null) return null;
  const node = h("span", { class: "due", dataset: { left: String(left), since: String(performance.now()), ticking: order.clock_ticking ? "1" : "" } });
  node.title = POINTS[point] + "时限 " + fmtTime(order.deadlines[point]);
  tick(node);
  return node;
}
function tick(node) {
  const passed = node.dataset.ticking ? (performance.now() - Number(node.dataset.since)) / 1000 : 0;
  const left = Number(node.dataset.left) - passed;
  node.textContent = left >= 0 ? "剩" + spell(left) : "超时" + spell(left);
  node.className = "due " + (left < 0 ? "over" : left < 4 * 3600 ? "soon" : "ok");
}
setInterval(() => document.querySelectorAll(".due[data-left]").forEach(tick), 1000);

export function lights(list) {
  return (list || []).map((l) => h("span", { class: "tag light-" + l.color, title: COLORS[l.color] },
    h("span", { class: "dot " + l.color }), " " + POINTS[l.point]));
}
export function statusTag(status) { return h("span", { class: "tag " + (STATUS_TAG[status] || "") }, STATUS[status] || status); }

// -- the header, login and who may use the page ------------------------------------------

let me = null;
export function user() { return me; }

function header(page) {
  const bar = $("topbar");
  const links = NAV.filter((n) => n.roles.includes(me.role)).map((n) =>
    h("a", { href: n.path, "aria-current": n.path === "/" + page ? "page" : null }, n.label));
  bar.replaceChildren(
    h("span", { class: "brand" }, h("b", null, "12345"), "政务服务便民热线"),
    h("nav", { "aria-label": "页面" }, links),
    h("span", { class: "live off", id: "live", title: "实时更新", hidden: true }, "实时"),
    h("span", { class: "who" }, (me.display_name || me.username) + " · " + ROLE_LABELS[me.role] + (me.unit ? "（" + me.unit + "）" : "")),
    h("button", { class: "link", type: "button", id: "logout", onclick: logout }, "退出"),
  );
  bar.hidden = false;
}

async function logout() {
  try { await api("POST", "/api/auth/logout"); } catch { /* gone already */ }
  sessionStorage.removeItem(TOKEN);
  location.reload();
}

let loginDone = null;
function showLogin(message) {
  $("topbar").hidden = true;
  $("app").hidden = true;
  const form = $("login");
  form.hidden = false;
  $("login-error").textContent = message || "";
  $("login-user").focus();
  return new Promise((resolve) => { loginDone = resolve; });
}

function loginForm(title) {
  const form = h("form", { class: "login", id: "login", hidden: true },
    h("h1", null, "12345 热线 · " + title),
    h("p", { class: "muted small" }, "工作人员登录"),
    h("input", { id: "login-user", autocomplete: "username", placeholder: "用户名", "aria-label": "用户名" }),
    h("input", { id: "login-pass", type: "password", autocomplete: "current-password", placeholder: "密码", "aria-label": "密码" }),
    h("button", { id: "login-btn", type: "submit", class: "primary" }, "登录"),
    h("p", { id: "login-error", class: "error-text", role: "alert" }),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const resp = await fetch("/api/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: $("login-user").value, password: $("login-pass").value }),
    });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) { $("login-error").textContent = ERRORS[data.error] || data.reason || "登录失败"; return; }
    sessionStorage.setItem(TOKEN, data.token);
    form.hidden = true;
    if (loginDone) loginDone(data.user);
  });
  return form;
}

function refuse(title, roles) {
  const allowed = NAV.filter((n) => n.roles.includes(me.role));
  const box = h("section", { class: "refused card", id: "refused", role: "alert" },
    h("h2", null, "无权访问「" + title + "」"),
    h("p", { class: "muted" }, "当前账号（" + ROLE_LABELS[me.role] + "）不能使用此页面；此页面仅供" + roles.map((r) => ROLE_LABELS[r]).join("、") + "使用。"),
    allowed.length ? h("p", null, "您可以使用：", allowed.map((n) => h("a", { href: n.path, style: "margin: 0 6px" }, n.label))) : null,
  );
  $("app").replaceWith(box);
  document.body.dataset.refused = "1";
}

/** Start a page: log in if needed, draw the header, refuse other roles, then init(user). */
export async function boot({ page, title, roles, init }) {
  document.title = "12345 · " + title;
  document.body.prepend(loginForm(title));
  $("app").prepend(h("div", { id: "flash", class: "flash", role: "alert", hidden: true }));
  if (token()) {
    try { me = await api("GET", "/api/auth/me"); } catch { me = null; }
  }
  if (!me) me = await showLogin();
  header(page);
  if (!roles.includes(me.role)) { refuse(title, roles); return; }
  $("app").hidden = false;
  try { await init(me); } catch (e) { flash(e.message || String(e)); }
  document.body.dataset.ready = "1";
}

// -- live updates ------------------------------------------------------------------------

/** Order changes pushed by the service (any process; PostgreSQL NOTIFY underneath). */
export function live(onFrame) {
  const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/api/staff/ws");
  const mark = (on) => {
    document.body.dataset.live = on ? "1" : "";
    const badge = $("live");
    if (badge) { badge.hidden = false; badge.className = "live " + (on ? "on" : "off"); badge.textContent = on ? "实时" : "连接中"; }
  };
  ws.onopen = () => ws.send(JSON.stringify({ token: token() }));
  ws.onmessage = (ev) => {
    const frame = JSON.parse(ev.data);
    if (frame.type === "ready") { mark(true); onFrame(frame); return; }
    if (frame.error) return;
    onFrame(frame);
  };
  ws.onclose = (ev) => {
    mark(false);
    if (ev.code !== 4401 && ev.code !== 4403) setTimeout(() => live(onFrame), 2000);
  };
}

/** Run fn at most once per `ms` however many pushes arrive (a burst of lights). */
export function debounce(fn, ms = 250) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

/** Tab buttons; names maps a key to a label, or to [label, count]. */
export function tabs(container, names, onPick) {
  const buttons = Object.entries(names).map(([key, label]) =>
    h("button", { type: "button", role: "tab", dataset: { tab: key }, "aria-selected": "false", onclick: () => pick(key) },
      Array.isArray(label) ? [label[0], h("span", { class: "count" }, String(label[1]))] : label));
  function pick(key) {
    for (const b of buttons) b.setAttribute("aria-selected", String(b.dataset.tab === key));
    onPick(key);
  }
  container.replaceChildren(...buttons);
  container.setAttribute("role", "tablist");
  return pick;
}

/** Trigger a download of an API response (exports need the bearer token, so no plain link). */
export async function download(path, name) {
  const resp = await api("GET", path, undefined, { raw: true });
  const url = URL.createObjectURL(await resp.blob());
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
