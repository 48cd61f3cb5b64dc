// The supervision board: the five points' lights by unit (live), drill-down to the orders;
// arbitration with both sides' reasons (the decision is kept as a precedent); escalated repeat
// reports; precedents; per-unit performance for a period.
import {
  $, h, fill, api, boot, flash, guard, live, debounce, empty, lights, statusTag, fmtTime, fmtDay, tabs,
  TYPES, POINTS, COLORS, EVENTS,
} from "/staff.js";

const POINT_ORDER = ["dispatch", "sign_for", "contact", "handling", "returned", "dissatisfied"];
const VIEWS = { lights: "亮灯看板", arbitration: "仲裁", escalations: "升级督办", precedents: "仲裁先例", performance: "绩效统计" };
let units = [];
let unitName = {};
let view = "lights";
let drill = null; // {unit, point, color} shown on the right

function unitSelect(id, selected, exclude = []) {
  const s = h("select", { id, "aria-label": "承办单位" }, h("option", { value: "" }, "请选择单位"));
  for (const u of units.filter((x) => !exclude.includes(x.code))) s.append(h("option", { value: u.code, selected: u.code === selected }, u.name));
  return s;
}

// -- lights --------------------------------------------------------------------------------

async function loadLights() {
  const board = await api("GET", "/api/supervisor/lights?limit=1");
  fill($("totals"),
    h("div", { class: "stat" }, h("span", { class: "muted small" }, "红灯"), h("b", { id: "total-red", style: "color: var(--red)" }, String(board.totals.red))),
    h("div", { class: "stat" }, h("span", { class: "muted small" }, "黄灯"), h("b", { id: "total-yellow", style: "color: #a86f00" }, String(board.totals.yellow))),
    POINT_ORDER.map((p) => h("div", { class: "stat" }, h("span", { class: "muted small" }, POINTS[p]),
      h("b", null, h("span", { style: "color: var(--red)" }, String(board.by_point[p].red)), h("span", { class: "muted" }, " / "), h("span", { style: "color: #a86f00" }, String(board.by_point[p].yellow))))));
  const rows = Object.entries(board.by_unit).map(([code, u]) => {
    const n = (p, c) => ((u.points[p] || {})[c] || 0);
    const red = POINT_ORDER.reduce((a, p) => a + n(p, "red"), 0);
    const yellow = POINT_ORDER.reduce((a, p) => a + n(p, "yellow"), 0);
    return { code, name: u.name, n, red, yellow };
  }).sort((a, b) => b.red - a.red || b.yellow - a.yellow);
  if (!rows.length) { fill($("matrix"), empty("目前没有亮灯，各单位均在时限内")); return; }
  const head = h("tr", null, h("th", { class: "name", rowspan: 2 }, "单位"), POINT_ORDER.map((p) => h("th", { colspan: 2 }, POINTS[p])));
  const head2 = h("tr", null, POINT_ORDER.map(() => [h("th", null, h("span", { class: "dot yellow", title: "黄灯" })), h("th", null, h("span", { class: "dot red", title: "红灯" }))]));
  const body = rows.map((r) => h("tr", { dataset: { unit: r.code } }, h("td", { class: "name" }, r.name),
    POINT_ORDER.map((p) => ["yellow", "red"].map((c) => h("td", null, r.n(p, c)
      ? h("button", { type: "button", class: "cell " + c, dataset: { point: p, color: c }, title: r.name + " " + POINTS[p] + COLORS[c],
        onclick: guard(() => openDrill({ unit: r.code === "centre" ? "" : r.code, point: p, color: c, name: r.name })) }, String(r.n(p, c)))
      : h("span", { class: "zero" }, "·"))))));
  fill($("matrix"), h("table", { class: "matrix", id: "light-matrix" }, h("thead", null, head, head2), h("tbody", null, body)));
  if (drill) await openDrill(drill);
}

async function openDrill(which) {
  drill = which;
  const q = new URLSearchParams({ point: which.point, color: which.color, limit: "100" });
  if (which.unit) q.set("unit", which.unit);
  const data = await api("GET", "/api/supervisor/lights?" + q);
  // the centre's own lights (dispatch) have no unit
  const list = data.lights.filter((l) => (which.unit ? l.unit_code === which.unit : l.unit_code == null));
  fill($("drill"),
    h("header", null, h("h2", null, which.name + " · " + POINTS[which.point] + COLORS[which.color]), h("span", { class: "tag" }, String(list.length))),
    list.length ? h("ul", { class: "list", id: "drill-list" }, list.map((l) => h("li", null, h("button", { type: "button", class: "item", dataset: { number: l.request_number }, onclick: guard(() => openOrder(l.request_number)) },
      h("div", { class: "line1" }, h("b", { class: "mono" }, l.request_number), statusTag(l.status), h("span", { class: "tag" }, TYPES[l.request_type] || l.request_type)),
      h("div", { class: "text" }, l.content),
      h("div", { class: "small muted" }, "亮灯 " + fmtTime(l.raised_at) + (l.due_at ? " · 时限 " + fmtTime(l.due_at) : "")))))) : empty("这些灯已熄灭"));
}

async function openOrder(number) {
  const o = await api("GET", "/api/dispatch/orders/" + number);
  fill($("drill"),
    h("header", null, h("button", { type: "button", onclick: guard(() => openDrill(drill)) }, "← 返回"), h("h2", null, h("span", { class: "mono" }, o.request_number)), statusTag(o.status)),
    h("p", { class: "small muted" }, (o.lead_unit_name || "未派发") + " · " + (o.location || "地点未知") + " · " + fmtTime(o.created_at)),
    h("div", { class: "content" }, o.content),
    h("div", { class: "row" }, lights(o.lights.filter((l) => l.lit))),
    h("h3", null, "办理记录"),
    h("ol", { class: "timeline" }, o.events.map((e) => h("li", null, h("b", null, EVENTS[e.kind] || e.kind), " ", h("span", { class: "small muted" }, fmtTime(e.at)), e.note ? h("div", { class: "small" }, e.note) : null))));
}

// -- arbitration ---------------------------------------------------------------------------

async function loadArbitration() {
  const data = await api("GET", "/api/supervisor/arbitration");
  if (!data.orders.length) { fill($("arbitration"), h("div", { class: "card" }, empty("没有待仲裁的工单"))); return; }
  fill($("arbitration"), h("div", { class: "grid", style: "grid-template-columns: 1fr 1fr" }, data.orders.map((o) => {
    const pick = unitSelect("arb-unit-" + o.request_number, (o.suggestions[0] || {}).code, o.returned_by);
    const reason = h("input", { class: "grow", id: "arb-reason-" + o.request_number, placeholder: "裁定理由（将作为先例）" });
    return h("article", { class: "card", dataset: { number: o.request_number } },
      h("header", null, h("h2", null, h("span", { class: "mono" }, o.request_number)), h("span", { class: "tag" }, TYPES[o.request_type] || o.request_type), statusTag(o.status)),
      h("div", { class: "content" }, o.content),
      h("p", { class: "small muted" }, (o.location || "地点未知") + " · 受理 " + fmtTime(o.created_at)),
      h("h3", null, "各方意见"),
      h("ul", { class: "list reasons" }, o.reasons.map((r) => h("li", { class: "small", style: "padding: 4px 0" },
        h("b", null, r.unit ? (unitName[r.unit] || r.unit) : r.actor), "（" + (r.kind === "returned" ? (r.data && r.data.dispute ? "退回并提出争议" : "退回") : "提请仲裁") + "）：", r.note || "—"))),
      o.suggestions.length ? h("p", { class: "small muted" }, "推荐：" + o.suggestions.map((s) => s.name).join("、")) : null,
      h("form", { class: "row", style: "margin-top: 8px", onsubmit: guard(async (ev) => {
        ev.preventDefault();
        if (!pick.value) { flash("请选择承办单位"); return; }
        const done = await api("POST", "/api/supervisor/arbitration/" + o.request_number, { unit: pick.value, reason: reason.value });
        flash("已裁定由 " + done.lead_unit_name + " 承办，并记为先例", "ok");
        await loadArbitration();
      }) }, pick, reason, h("button", { type: "submit", class: "primary" }, "裁定")));
  })));
}

// -- escalations and precedents ------------------------------------------------------------

async function loadEscalations() {
  const data = await api("GET", "/api/supervisor/escalations");
  if (!data.orders.length) { fill($("escalations"), empty("没有升级督办的重复诉求")); return; }
  fill($("escalations"), h("table", null,
    h("thead", null, h("tr", null, ["诉求编号", "内容", "主办单位", "重复次数", "状态", "升级时间"].map((t) => h("th", null, t)))),
    h("tbody", null, data.orders.map((o) => h("tr", null, h("td", { class: "mono" }, o.request_number), h("td", null, o.content), h("td", null, o.lead_unit_name || "—"),
      h("td", { class: "num" }, String(o.repeat_count)), h("td", null, statusTag(o.status)), h("td", null, fmtTime(o.escalated_at)))))));
}

async function loadPrecedents() {
  const data = await api("GET", "/api/supervisor/precedents");
  if (!data.precedents.length) { fill($("precedents"), empty("还没有仲裁先例")); return; }
  fill($("precedents"), h("table", null,
    h("thead", null, h("tr", null, ["来源工单", "诉求内容", "承办单位", "理由", "裁定人", "时间", ""].map((t) => h("th", null, t)))),
    h("tbody", null, data.precedents.map((p) => h("tr", { dataset: { id: String(p.id) } }, h("td", { class: "mono" }, p.request_number), h("td", null, p.text), h("td", null, p.unit_name),
      h("td", null, p.reason || "—"), h("td", null, p.decided_by), h("td", null, fmtTime(p.created_at)),
      h("td", null, h("button", { type: "button", class: "danger", onclick: guard(async () => {
        if (!confirm("删除这条先例？相似工单将不再按它派发。")) return;
        await api("DELETE", "/api/supervisor/precedents/" + p.id);
        flash("先例已删除", "ok");
        await loadPrecedents();
      }) }, "删除")))))));
}

// -- performance ---------------------------------------------------------------------------

const pct = (r) => (r == null ? "—" : (r * 100).toFixed(1) + "%");

function bars(rows, value, low) {
  const shown = rows.filter((r) => value(r) != null).slice(0, 12);
  if (!shown.length) return empty("该期间没有可统计的工单");
  return h("div", { class: "bars" }, shown.map((r) => [h("span", { class: "small" }, r.name),
    h("div", { class: "bar", role: "img", "aria-label": r.name + " " + pct(value(r)) }, h("span", { class: value(r) < low ? "low" : "", style: "width:" + Math.round(value(r) * 100) + "%" })),
    h("span", { class: "small num" }, pct(value(r)))]));
}

async function loadPerformance() {
  const q = new URLSearchParams();
  if ($("from").value) q.set("from", $("from").value);
  if ($("to").value) q.set("to", $("to").value);
  const data = await api("GET", "/api/supervisor/performance?" + q);
  $("from").value = fmtDay(data.from);
  $("to").value = fmtDay(data.to);
  const rows = data.units.sort((a, b) => b.received - a.received);
  fill($("chart"), bars(rows, (r) => r.sign_for.rate, 0.9));
  fill($("chart-handling"), bars(rows, (r) => r.handling.rate, 0.9));
  if (!rows.length) { fill($("performance"), empty("该期间没有工单")); return; }
  const reds = (r) => Object.values(r.red_lights).reduce((a, b) => a + b, 0);
  fill($("performance"), h("table", { id: "performance-table" },
    h("thead", null, h("tr", null, ["单位", "受理", "办结", "退回", "按时签收", "按时联系", "按时办结", "退回率", "红灯"].map((t, i) => h("th", { class: i ? "num" : "" }, t)))),
    h("tbody", null, rows.map((r) => h("tr", { dataset: { unit: r.unit } }, h("td", null, r.name),
      [r.received, r.resolved, r.returned].map((v) => h("td", { class: "num" }, String(v))),
      [r.sign_for.rate, r.contact.rate, r.handling.rate, r.return_rate].map((v) => h("td", { class: "num" }, pct(v))),
      h("td", { class: "num" }, String(reds(r))))))));
}

const LOADERS = { lights: loadLights, arbitration: loadArbitration, escalations: loadEscalations, precedents: loadPrecedents, performance: loadPerformance };

boot({
  page: "supervisor", title: "督查督办", roles: ["supervisor"],
  init: async () => {
    units = (await api("GET", "/api/staff/units")).units;
    unitName = Object.fromEntries(units.map((u) => [u.code, u.name]));
    fill($("drill"), h("header", null, h("h2", null, "亮灯工单")), empty("点击左侧的数字查看亮灯工单"));
    $("period").addEventListener("submit", guard(async (ev) => { ev.preventDefault(); await loadPerformance(); }));
    tabs($("tabs"), VIEWS, guard(async (key) => {
      view = key;
      for (const k of Object.keys(VIEWS)) $("view-" + k).hidden = k !== key;
      document.body.dataset.view = key;
      await LOADERS[key]();
    }))("lights");
    // lights and queues change while the board is open: redraw what is shown
    const reload = debounce(guard(async () => { if (view !== "performance") await LOADERS[view](); }), 300);
    live((frame) => { if (frame.type !== "ready") reload(); });
  },
});
