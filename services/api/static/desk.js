// The dispatch desk: the manual dispatch queue, one order with its history, and what the
// desk does with it (dispatch with lead and assisting units, change the lead, arbitration).
import {
  $, h, fill, api, boot, actorLabel, flash, guard, live, debounce, empty, due, lights, statusTag, fmtTime,
  TYPES, CHANNELS, EVENTS, OUTCOMES, STATUS,
} from "/staff.js";

const QUEUE = ["awaiting_dispatch", "returned"];
const MOVABLE = ["dispatched", "signed", "contacted"];
const TO_ARBITRATION = ["awaiting_dispatch", "returned", "dispatched", "signed", "contacted"];
const SOURCES = { precedent: "仲裁先例", nlu: "智能识别", territorial: "属地单位" };
let units = [];
let unitName = {};
let queue = [];
let searchResults = null;
let current = null; // the order open on the right

function unitOptions(select, { blank = "请选择单位", exclude = [] } = {}) {
  const groups = { department: "部门", territorial: "镇街", enterprise: "企业", organization: "其他" };
  select.replaceChildren(h("option", { value: "" }, blank));
  for (const [kind, label] of Object.entries(groups)) {
    const group = h("optgroup", { label });
    for (const u of units.filter((x) => x.kind === kind && !exclude.includes(x.code))) group.append(h("option", { value: u.code }, u.name));
    if (group.children.length) select.append(group);
  }
}

// -- the list ----------------------------------------------------------------------------

function shown() {
  if (searchResults) return searchResults;
  const status = $("filter-status").value;
  const type = $("filter-type").value;
  const soon = $("filter-overdue").checked;
  return queue.filter((o) => (!status || o.status === status) && (!type || o.request_type === type)
    && (!soon || (o.time_left.dispatch ?? Infinity) < 4 * 3600));
}

function renderList() {
  const list = $("queue");
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.number : null;
  const orders = shown();
  $("queue-count").textContent = String(orders.length);
  $("queue-title").textContent = searchResults ? "搜索结果" : "人工派单队列";
  if (!orders.length) {
    list.replaceChildren(empty(searchResults ? "没有找到相符的工单" : "队列已清空，暂无待派发工单"));
    return;
  }
  fill(list, orders.map((o) => h("li", null, h("button", {
    type: "button", class: "item" + (current && current.request_number === o.request_number ? " selected" : ""),
    dataset: { number: o.request_number, status: o.status }, onclick: guard(() => openOrder(o.request_number)),
  },
  h("div", { class: "line1" }, h("b", { class: "mono" }, o.request_number), statusTag(o.status),
    h("span", { class: "tag" }, TYPES[o.request_type] || o.request_type), h("span", { class: "grow" }), due(o, "dispatch")),
  h("div", { class: "text" }, o.content),
  h("div", { class: "small muted" }, (o.location || "地点未知") + " · " + fmtTime(o.created_at),
    o.returned_by && o.returned_by.length ? " · 被退回：" + o.returned_by.map((c) => unitName[c] || c).join("、") : ""),
  lights(o.lit).length ? h("div", { class: "row" }, lights(o.lit)) : null,
  ))));
  if (focused) { const again = list.querySelector('[data-number="' + focused + '"]'); if (again) again.focus(); }
}

async function loadQueue() {
  const data = await api("GET", "/api/dispatch/queue?limit=500");
  queue = data.orders;
  renderList();
}

async function search(q) {
  const data = await api("GET", "/api/dispatch/search?q=" + encodeURIComponent(q));
  searchResults = data.orders;
  $("search-clear").hidden = false;
  renderList();
}

// -- one order -----------------------------------------------------------------------------

function facts(o) {
  const rows = [
    ["类型", TYPES[o.request_type] || o.request_type],
    ["来源", CHANNELS[o.channel] || o.channel],
    ["联系电话", o.contact_phone || "—"],
    ["地点", o.location || "—"],
    ["受理时间", fmtTime(o.created_at)],
    ["主办单位", o.lead_unit_name || "未派发"],
    ["协办单位", (o.assisting_units || []).map((c) => unitName[c] || c).join("、") || "—"],
  ];
  if (o.repeat_of) rows.push(["重复诉求", "与 " + o.repeat_of + " 重复"]);
  if (o.repeat_count) rows.push(["重复次数", String(o.repeat_count)]);
  const dl = h("dl", { class: "facts" });
  for (const [k, v] of rows) dl.append(h("dt", null, k), h("dd", null, v));
  const clocks = Object.keys(o.time_left || {});
  if (clocks.length) dl.append(h("dt", null, "时限"), h("dd", { class: "row" }, clocks.map((p) => due(o, p))));
  return dl;
}

function timeline(o) {
  return h("ol", { class: "timeline" }, o.events.map((e) => h("li", null,
    h("div", null, h("b", null, EVENTS[e.kind] || e.kind), " ", h("span", { class: "muted small" }, fmtTime(e.at) + " · " + actorLabel(e) + (e.unit ? " · " + (unitName[e.unit] || e.unit) : ""))),
    e.note ? h("div", { class: "small" }, e.note) : null)));
}

function renderDetail(o) {
  const box = $("detail");
  fill(box, 
    h("header", null, h("h2", null, "工单 ", h("span", { class: "mono", id: "detail-number" }, o.request_number)), statusTag(o.status)),
    facts(o),
    h("div", { class: "content", id: "detail-content" }, o.content),
    o.lights.length ? h("div", { class: "row" }, h("span", { class: "muted small" }, "督办亮灯："), lights(o.lights.filter((l) => l.lit))) : null,
    o.revisits.length ? h("p", { class: "small" }, "回访：", o.revisits.map((r) => "第" + r.round + "轮 " + (OUTCOMES[r.outcome] || "进行中") + (r.comment ? "（" + r.comment + "）" : "")).join("；")) : null,
    h("h3", null, "办理记录"),
    timeline(o),
  );
}

function suggestionCards(item) {
  if (!item || !item.suggestions || !item.suggestions.length) return empty("没有可用的推荐单位，请手动选择");
  return h("div", { id: "suggestions" }, item.suggestions.map((s, i) => h("div", { class: "sugg", dataset: { code: s.code } },
    h("span", { class: "rank" }, String(i + 1)),
    h("div", { class: "grow" }, h("div", null, h("b", null, s.name)),
      h("div", { class: "small muted" }, SOURCES[s.source] + (s.probability != null ? " · 置信度 " + Math.round(s.probability * 100) + "%" : "") + (s.precedent_id ? " · 先例 #" + s.precedent_id : ""))),
    h("button", { type: "button", onclick: () => { $("lead").value = s.code; $("lead").focus(); markChosen(); } }, "设为主办"))));
}

function markChosen() {
  document.querySelectorAll("#suggestions .sugg").forEach((c) => c.classList.toggle("chosen", c.dataset.code === $("lead").value));
}

function renderActions(o) {
  const box = $("actions");
  const parts = [];
  if (QUEUE.includes(o.status)) {
    const item = queue.find((q) => q.request_number === o.request_number);
    const lead = h("select", { id: "lead", "aria-label": "主办单位", onchange: markChosen });
    const assists = h("select", { id: "assists", multiple: true, size: 6, "aria-label": "协办单位" });
    unitOptions(lead);
    unitOptions(assists, { blank: "（不需要协办）" });
    assists.firstChild.disabled = true;
    const note = h("textarea", { id: "dispatch-note", rows: 2, placeholder: "派单备注（可选）" });
    parts.push(
      h("header", null, h("h2", null, "推荐承办单位")),
      suggestionCards(item),
      h("form", { id: "dispatch-form", onsubmit: guard(async (ev) => {
        ev.preventDefault();
        if (!lead.value) { flash("请选择主办单位"); lead.focus(); return; }
        const body = { lead: lead.value, assists: [...assists.selectedOptions].map((x) => x.value), note: note.value || null };
        const done = await api("POST", "/api/dispatch/orders/" + o.request_number + "/dispatch", body);
        flash("已派发至 " + done.lead_unit_name, "ok");
        await refresh(done);
      }) },
      h("label", { for: "lead" }, "主办单位"), lead,
      h("label", { for: "assists" }, "协办单位（按 Ctrl 多选）"), assists,
      h("label", { for: "dispatch-note" }, "备注"), note,
      h("div", { class: "row", style: "margin-top:10px" }, h("button", { type: "submit", class: "primary", id: "dispatch" }, "派发"))),
    );
    const top = item && item.suggestions && item.suggestions[0];
    if (top) { lead.value = top.code; markChosen(); }
  }
  if (MOVABLE.includes(o.status)) {
    const lead = h("select", { id: "new-lead", "aria-label": "新的主办单位" });
    unitOptions(lead, { exclude: [o.lead_unit] });
    const reason = h("input", { id: "lead-reason", placeholder: "改派原因" });
    parts.push(h("header", null, h("h2", null, "改派")),
      h("form", { id: "lead-form", onsubmit: guard(async (ev) => {
        ev.preventDefault();
        const done = await api("POST", "/api/dispatch/orders/" + o.request_number + "/lead", { lead: lead.value, reason: reason.value });
        flash("已改派至 " + done.lead_unit_name, "ok");
        await refresh(done);
      }) }, h("label", { for: "new-lead" }, "新的主办单位"), lead, h("label", { for: "lead-reason" }, "原因"), reason,
      h("div", { class: "row", style: "margin-top:10px" }, h("button", { type: "submit" }, "改派"))));
    const assist = h("select", { id: "add-assist", "aria-label": "增加协办单位" });
    unitOptions(assist, { exclude: [o.lead_unit, ...(o.assisting_units || [])] });
    parts.push(h("form", { class: "row", style: "margin-top:10px", onsubmit: guard(async (ev) => {
      ev.preventDefault();
      const done = await api("POST", "/api/dispatch/orders/" + o.request_number + "/assists", { unit: assist.value });
      flash("已增加协办单位", "ok");
      await refresh(done);
    }) }, assist, h("button", { type: "submit" }, "增加协办")));
  }
  if (TO_ARBITRATION.includes(o.status)) {
    const reason = h("input", { id: "arbitration-reason", class: "grow", placeholder: "提请仲裁的理由" });
    parts.push(h("h3", null, "权属争议"), h("form", { class: "row", id: "arbitration-form", onsubmit: guard(async (ev) => {
      ev.preventDefault();
      const done = await api("POST", "/api/dispatch/orders/" + o.request_number + "/arbitration", { reason: reason.value });
      flash("已提请督查督办仲裁", "ok");
      await refresh(done);
    }) }, reason, h("button", { type: "submit", class: "danger" }, "提请仲裁")));
  }
  if (!parts.length) parts.push(h("header", null, h("h2", null, "办理")), empty("该工单当前为「" + STATUS[o.status] + "」，派单台无需操作"));
  fill(box, ...parts);
}

async function refresh(order) {
  await loadQueue();
  if (searchResults && $("search-q").value.trim()) await search($("search-q").value.trim());
  show(order);
}

function show(o) {
  current = o;
  renderDetail(o);
  renderActions(o);
  renderList();
}

async function openOrder(number) {
  show(await api("GET", "/api/dispatch/orders/" + number));
}

function blank() {
  $("detail").replaceChildren(h("header", null, h("h2", null, "工单详情")), empty("从左侧队列选择一个工单"));
  $("actions").replaceChildren(h("header", null, h("h2", null, "派单")), empty("选择工单后在此派发"));
}

boot({
  page: "desk", title: "派单台", roles: ["agent", "supervisor"],
  init: async () => {
    units = (await api("GET", "/api/staff/units")).units;
    unitName = Object.fromEntries(units.map((u) => [u.code, u.name]));
    for (const [k, v] of Object.entries(TYPES)) $("filter-type").append(h("option", { value: k }, v));
    for (const id of ["filter-status", "filter-type", "filter-overdue"]) $(id).addEventListener("change", renderList);
    $("search").addEventListener("submit", guard(async (ev) => {
      ev.preventDefault();
      const q = $("search-q").value.trim();
      if (q) await search(q);
    }));
    $("search-clear").addEventListener("click", () => { searchResults = null; $("search-q").value = ""; $("search-clear").hidden = true; renderList(); });
    blank();
    await loadQueue();
    // the queue is read again; the open order only when it is the one that changed (a form
    // being filled in is not wiped by someone else's work)
    let touched = new Set();
    const reloadSoon = debounce(guard(async () => {
      const changed = touched;
      touched = new Set();
      await loadQueue();
      if (current && changed.has(current.request_number)) {
        const fresh = await api("GET", "/api/dispatch/orders/" + current.request_number);
        if (fresh.events.length !== current.events.length || fresh.status !== current.status) show(fresh);
      }
    }), 300);
    const reload = (number) => { touched.add(number); reloadSoon(); };
    live((frame) => { if (frame.type !== "ready") reload(frame.request_number); });
  },
});
