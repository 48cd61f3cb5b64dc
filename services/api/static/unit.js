// The unit handler's workspace: the unit's orders by state with their clocks and lights; sign
// for, record the contact, resolve, return or dispute, decide a suggestion; the revisit's
// verdict; a printable order sheet. The main flow works with the keyboard alone: each action
// moves the focus to the next one.
import {
  $, h, fill, api, boot, actorLabel, flash, guard, live, debounce, empty, due, lights, statusTag, fmtTime,
  tabs, TYPES, CHANNELS, EVENTS, OUTCOMES,
} from "/staff.js";

const GROUPS = {
  todo: { label: "待签收", test: (o) => o.unit_role === "lead" && o.status === "dispatched" },
  doing: { label: "办理中", test: (o) => o.unit_role === "lead" && ["signed", "contacted"].includes(o.status) },
  resolved: { label: "待回访", test: (o) => o.unit_role === "lead" && o.status === "resolved" },
  closed: { label: "已归档", test: (o) => o.unit_role === "lead" && ["closed", "returned", "arbitration"].includes(o.status) },
  assist: { label: "协办", test: (o) => o.unit_role === "assist" },
};
const CLOCK_LABELS = { sign_for: "签收", contact: "联系", handling: "办结" };
let orders = [];
let group = "todo";
let current = null;
let unitName = "";
let pickTab = null;
let busy = Promise.resolve(); // our own action in progress: live reloads wait for it

function renderTabs() {
  const names = Object.fromEntries(Object.entries(GROUPS).map(([k, g]) => [k, [g.label, orders.filter(g.test).length]]));
  pickTab = tabs($("tabs"), names, (key) => { group = key; renderList(); });
  pickTab(group);
}

function renderList() {
  const list = $("orders");
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.number : null;
  const shown = orders.filter(GROUPS[group].test);
  if (!shown.length) { fill(list, empty("「" + GROUPS[group].label + "」暂无工单")); return; }
  fill(list, shown.map((o) => h("li", null, h("button", {
    type: "button", class: "item" + (current && current.request_number === o.request_number ? " selected" : ""),
    dataset: { number: o.request_number }, onclick: guard(() => openOrder(o.request_number, true)),
  },
  h("div", { class: "line1" }, h("b", { class: "mono" }, o.request_number), statusTag(o.status),
    h("span", { class: "tag" }, TYPES[o.request_type] || o.request_type), h("span", { class: "grow" }),
    Object.keys(o.time_left || {}).filter((p) => p !== "dispatch").slice(0, 1).map((p) => [h("span", { class: "small muted" }, CLOCK_LABELS[p]), due(o, p)])),
  h("div", { class: "text" }, o.content),
  h("div", { class: "row small muted" }, (o.location || "地点未知") + " · " + fmtTime(o.created_at), lights(o.lit)),
  ))));
  if (focused) { const again = list.querySelector('[data-number="' + focused + '"]'); if (again) again.focus(); }
}

async function loadOrders() {
  const data = await api("GET", "/api/unit/orders?limit=500");
  orders = data.orders;
  renderTabs();
}

// -- one order ---------------------------------------------------------------------------

function facts(o) {
  const dl = h("dl", { class: "facts" });
  const rows = [
    ["类型", TYPES[o.request_type] || o.request_type], ["来源", CHANNELS[o.channel] || o.channel],
    ["联系电话", o.contact_phone || "—"], ["地点", o.location || "—"], ["受理时间", fmtTime(o.created_at)],
    ["主办单位", o.lead_unit_name || "—"], ["本单位", o.unit_role === "assist" ? "协办" : "主办"],
  ];
  for (const [k, v] of rows) dl.append(h("dt", null, k), h("dd", null, v));
  const clocks = Object.keys(o.time_left || {}).filter((p) => p !== "dispatch");
  if (clocks.length) dl.append(h("dt", null, "时限"), h("dd", { class: "row" }, clocks.map((p) => h("span", null, CLOCK_LABELS[p] + " ", due(o, p)))));
  return dl;
}

function revisitBox(o) {
  if (!o.revisits.length) return null;
  return [h("h3", null, "回访结果"), ...o.revisits.map((r) => h("div", { class: "content" + (r.outcome === "dissatisfied" ? " error-text" : ""), dataset: { outcome: r.outcome || "" } },
    "第" + r.round + "轮回访：" + (r.outcome ? OUTCOMES[r.outcome] : "已安排，尚未完成"),
    r.comment ? h("div", null, "市民意见：", h("span", { class: "revisit-comment" }, r.comment)) : null))];
}

function form(id, fields, button, submit) {
  return h("form", { id, onsubmit: guard(async (ev) => { ev.preventDefault(); await submit(); }) }, fields, h("div", { class: "row", style: "margin-top:8px" }, button));
}

function actions(o) {
  if (o.unit_role === "assist") return [h("p", { class: "muted" }, "本单位为协办单位：请配合主办单位办理，此处仅可查看。")];
  const n = o.request_number;
  const out = [];
  const act = (what, body, message, next) => {
    const work = (async () => {
      await api("POST", "/api/unit/orders/" + n + "/" + what, body);
      flash(message, "ok");
      await loadOrders();
      await openOrder(n, false);
      const focus = next && $(next);
      if (focus) focus.focus();
    })();
    busy = work.catch(() => {});
    return work;
  };
  if (o.status === "dispatched") {
    out.push(h("div", { class: "row" }, h("button", { type: "button", class: "primary", id: "sign", onclick: guard(() => act("sign", {}, "已签收，请及时联系市民", "contact-note")) }, "签收")));
  }
  if (o.status === "signed") {
    const note = h("textarea", { id: "contact-note", rows: 2, placeholder: "联系市民的情况（时间、方式、核实结果）" });
    out.push(h("h3", null, "联系市民"), form("contact-form", [note],
      h("button", { type: "submit", id: "contact" }, "记录联系"),
      () => act("contact", { note: note.value }, "已记录联系情况", "resolve-result")));
  }
  if (["signed", "contacted"].includes(o.status)) {
    const result = h("textarea", { id: "resolve-result", rows: 3, placeholder: "办理结果（将用于回访市民）" });
    out.push(h("h3", null, "办结"), form("resolve-form", [result],
      h("button", { type: "submit", class: "primary", id: "resolve" }, "办结"),
      () => act("resolve", { result: result.value }, "已办结，回访已安排", null)));
  }
  if (["dispatched", "signed", "contacted"].includes(o.status)) {
    const reason = h("input", { id: "return-reason", class: "grow", placeholder: "退回理由（不属本单位职责的依据）" });
    const dispute = h("input", { type: "checkbox", id: "return-dispute" });
    out.push(h("h3", null, "退回"), form("return-form", [h("div", { class: "row" }, reason), h("label", { class: "inline small", style: "margin-top:6px" }, dispute, "权属有争议，提请仲裁")],
      h("button", { type: "submit", class: "danger", id: "return" }, "退回"),
      () => act("return", { reason: reason.value, dispute: dispute.checked }, dispute.checked ? "已退回并提请仲裁" : "已退回中心", null)));
  }
  const decided = o.events.some((e) => e.kind.startsWith("suggestion_"));
  if (o.request_type === "suggest" && ["signed", "contacted", "resolved", "closed"].includes(o.status) && !decided) {
    const yes = h("input", { type: "radio", name: "adopt", value: "1", id: "adopt-yes" });
    const no = h("input", { type: "radio", name: "adopt", value: "0", id: "adopt-no" });
    const reason = h("input", { id: "adopt-reason", class: "grow", placeholder: "理由" });
    out.push(h("h3", null, "建议采纳"), form("suggestion-form", [h("div", { class: "row" }, h("label", { class: "inline" }, yes, "采纳"), h("label", { class: "inline" }, no, "不采纳"), reason)],
      h("button", { type: "submit", id: "adopt" }, "提交"),
      async () => {
        if (!yes.checked && !no.checked) { flash("请选择是否采纳"); return; }
        const done = await api("POST", "/api/unit/orders/" + n + "/suggestion", { adopted: yes.checked, reason: reason.value });
        flash(done.adopted ? "已记录：采纳" : "已记录：不采纳", "ok");
        await openOrder(n, false);
      }));
  }
  if (!out.length) out.push(h("p", { class: "muted" }, "该工单当前无需本单位操作。"));
  return out;
}

function timeline(o) {
  return h("ol", { class: "timeline" }, o.events.map((e) => h("li", null,
    h("div", null, h("b", null, EVENTS[e.kind] || e.kind), " ", h("span", { class: "muted small" }, fmtTime(e.at) + " · " + actorLabel(e))),
    e.note ? h("div", { class: "small" }, e.note) : null)));
}

function renderDetail(o) {
  fill($("detail"),
    h("header", null, h("h2", null, "工单 ", h("span", { class: "mono", id: "detail-number" }, o.request_number)), statusTag(o.status),
      h("button", { type: "button", id: "print", onclick: () => printSheet(o) }, "打印工单")),
    facts(o),
    h("div", { class: "content", id: "detail-content" }, o.content),
    o.lights.some((l) => l.lit) ? h("div", { class: "row" }, h("span", { class: "muted small" }, "督办亮灯："), lights(o.lights.filter((l) => l.lit))) : null,
    revisitBox(o),
    actions(o),
    h("h3", null, "办理记录"), timeline(o));
}

async function openOrder(number, focusAction) {
  current = await api("GET", "/api/unit/orders/" + number);
  renderDetail(current);
  renderList();
  if (focusAction) {
    // the next thing to do, in the order of the work
    const first = ["sign", "contact-note", "resolve-result", "adopt-yes", "print"].map((id) => $(id)).find(Boolean);
    if (first) first.focus();
  }
}

// -- the printed order sheet ---------------------------------------------------------------

function printSheet(o) {
  const row = (k, v) => h("tr", null, h("th", null, k), h("td", null, v));
  fill($("sheet"),
    h("h1", null, "12345 政务服务便民热线 工单"),
    h("table", null, h("tbody", null,
      row("诉求编号", o.request_number), row("诉求类型", TYPES[o.request_type] || o.request_type),
      row("受理渠道", CHANNELS[o.channel] || o.channel), row("受理时间", fmtTime(o.created_at)),
      row("联系电话", o.contact_phone || "—"), row("地点", o.location || "—"),
      row("诉求内容", o.content),
      row("主办单位", o.lead_unit_name || "—"),
      row("办理时限", Object.entries(o.deadlines).filter(([p, v]) => v && p !== "dispatch").map(([p, v]) => CLOCK_LABELS[p] + " " + fmtTime(v)).join("；") || "—"),
      row("办理记录", o.events.map((e) => fmtTime(e.at) + " " + (EVENTS[e.kind] || e.kind) + (e.note ? "：" + e.note : "")).join("\n")),
    )),
    h("div", { class: "sign" }, h("span", null, "承办人："), h("span", null, "审核人："), h("span", null, "日期：")));
  document.body.classList.add("printing");
  window.print();
}
window.addEventListener("afterprint", () => document.body.classList.remove("printing"));

boot({
  page: "unit", title: "承办工作台", roles: ["unit_handler"],
  init: async (me) => {
    const units = (await api("GET", "/api/staff/units")).units;
    unitName = (units.find((u) => u.code === me.unit) || {}).name || me.unit;
    $("unit-name").textContent = unitName;
    fill($("detail"), h("header", null, h("h2", null, "工单详情")), empty("从左侧选择一个工单办理"));
    await loadOrders();
    let touched = new Set();
    const reloadSoon = debounce(guard(async () => {
      await busy;
      const changed = touched;
      touched = new Set();
      await loadOrders();
      // the open order is drawn again only when someone else changed it (our own action has
      // drawn it already, and drawing it again would take away what is being typed)
      if (current && changed.has(current.request_number)) {
        const fresh = await api("GET", "/api/unit/orders/" + current.request_number);
        if (fresh.events.length !== current.events.length || fresh.status !== current.status) await openOrder(fresh.request_number, false);
      }
    }), 300);
    live((frame) => { if (frame.type !== "ready") { touched.add(frame.request_number); reloadSoon(); } });
  },
});
