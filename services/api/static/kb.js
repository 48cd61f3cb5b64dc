// The knowledge editors' page: search, create and edit entries (version history with a diff),
// publish / retire / withdraw, validity dates; import a spreadsheet (its row errors shown),
// export; questions the base could not answer turned into entries; entries flagged by
// feedback; providers.
import { $, h, fill, api, boot, flash, guard, empty, fmtTime, fmtDay, tabs, download, ApiError } from "/staff.js";

const STATUS = { draft: "草稿", published: "已发布", retired: "已下架" };
const STATUS_TAG = { draft: "yellow", published: "green", retired: "" };
const ACTIONS = { publish: ["发布", ["draft", "retired"]], retire: ["下架", ["draft", "published"]], withdraw: ["撤回为草稿", ["published", "retired"]] };
const FIELDS = { id: "编号", question: "问题", alternatives: "其他问法", answer: "答案", unit: "主管单位", tags: "标签", valid_from: "生效日期", valid_until: "失效日期", status: "状态" };
const VERSION_ACTIONS = { create: "创建", edit: "修改", update: "修改", publish: "发布", retire: "下架", withdraw: "撤回", import: "导入" };
const VIEWS = { entries: "知识条目", import: "导入导出", misses: "未解答问题", flagged: "反馈标记", providers: "服务商" };
let units = [];
let current = null; // the entry in the editor (null: a new one)
let pick = null;

const lines = (text) => text.split("\n").map((s) => s.trim()).filter(Boolean);
const words = (text) => text.split(/[,，、\s]+/).map((s) => s.trim()).filter(Boolean);
const show = (v) => (Array.isArray(v) ? v.join("；") : v == null || v === "" ? "（空）" : String(v));

// -- the list ------------------------------------------------------------------------------

async function loadEntries() {
  const q = new URLSearchParams({ limit: "100" });
  if ($("search-q").value.trim()) q.set("q", $("search-q").value.trim());
  if ($("search-status").value) q.set("status", $("search-status").value);
  const data = await api("GET", "/api/kb/entries?" + q);
  $("total").textContent = "共 " + data.total + " 条";
  if (!data.entries.length) { fill($("entries"), empty("没有相符的条目")); return; }
  fill($("entries"), data.entries.map((e) => h("li", null, h("button", {
    type: "button", class: "item" + (current && current.id === e.id ? " selected" : ""), dataset: { id: e.id }, onclick: guard(() => openEntry(e.id)),
  }, h("div", { class: "line1" }, h("b", { class: "grow" }, e.question), h("span", { class: "tag " + STATUS_TAG[e.status] }, STATUS[e.status])),
  h("div", { class: "small muted" }, e.id + " · 第" + e.version + "版 · " + (e.updated_by || "") + " " + fmtTime(e.updated_at))))));
}

// -- the editor ----------------------------------------------------------------------------

function input(id, label, value, props = {}) {
  return [h("label", { for: id }, label), h(props.tag || "input", { id, value: value ?? "", ...props, tag: null })];
}

function renderEditor(e, prefill = {}) {
  current = e;
  const v = e || prefill;
  const unit = h("select", { id: "f-unit" }, h("option", { value: "" }, "（无）"), units.map((u) => h("option", { value: u.code, selected: u.code === v.unit }, u.name)));
  const form = h("form", { id: "entry-form", onsubmit: guard(save) },
    e ? null : input("f-id", "编号（字母、数字、-，可留空自动生成）", v.id),
    input("f-question", "问题", v.question),
    input("f-alternatives", "其他问法（每行一个）", (v.alternatives || []).join("\n"), { tag: "textarea", rows: 3 }),
    input("f-answer", "答案", v.answer, { tag: "textarea", rows: 6 }),
    h("div", { class: "grid", style: "grid-template-columns: 1fr 1fr 1fr; gap: 10px" },
      h("div", null, h("label", { for: "f-unit" }, "主管单位"), unit),
      h("div", null, input("f-from", "生效日期", v.valid_from, { type: "date" })),
      h("div", null, input("f-until", "失效日期", v.valid_until, { type: "date" }))),
    input("f-tags", "标签（逗号分隔）", (v.tags || []).join("，")),
    h("div", { class: "row", style: "margin-top: 12px" },
      h("button", { type: "submit", class: "primary", id: "save" }, e ? "保存修改" : "创建草稿"),
      e ? Object.entries(ACTIONS).filter(([, [, from]]) => from.includes(e.status)).map(([a, [label]]) =>
        h("button", { type: "button", id: "do-" + a, class: a === "publish" ? "" : "danger", onclick: guard(() => transition(a)) }, label)) : null));
  for (const el of form.querySelectorAll("input, select, textarea")) el.style.width = "100%";
  fill($("editor"),
    h("header", null, h("h2", null, e ? "编辑条目 " : "新建条目", e ? h("span", { class: "mono" }, e.id) : null),
      e ? h("span", { class: "tag " + STATUS_TAG[e.status], id: "entry-status" }, STATUS[e.status]) : null,
      e ? h("span", { class: "muted small" }, "第" + e.version + "版") : null),
    form,
    e ? h("div", { id: "history" }) : null);
  if (e) loadHistory(e.id).catch((err) => flash(err.message));
}

function body() {
  return {
    question: $("f-question").value, alternatives: lines($("f-alternatives").value), answer: $("f-answer").value,
    unit: $("f-unit").value || null, tags: words($("f-tags").value),
    valid_from: $("f-from").value || null, valid_until: $("f-until").value || null,
  };
}

async function save(ev) {
  ev.preventDefault();
  let saved;
  if (current) saved = await api("PATCH", "/api/kb/entries/" + current.id, { ...body(), version: current.version });
  else {
    const b = body();
    if ($("f-id").value.trim()) b.id = $("f-id").value.trim();
    b.status = "draft";
    saved = await api("POST", "/api/kb/entries", b);
  }
  flash(current ? "已保存为第" + saved.version + "版" : "已创建草稿 " + saved.id, "ok");
  renderEditor(saved);
  await loadEntries();
}

async function transition(action) {
  const saved = await api("POST", "/api/kb/entries/" + current.id + "/" + action, { version: current.version });
  flash("「" + saved.question + "」" + STATUS[saved.status], "ok");
  renderEditor(saved);
  await loadEntries();
}

async function openEntry(id) {
  renderEditor(await api("GET", "/api/kb/entries/" + id));
  await loadEntries();
}

// -- history and diff ------------------------------------------------------------------------

async function loadHistory(id) {
  const data = await api("GET", "/api/kb/entries/" + id + "/history");
  const versions = data.versions.slice().sort((a, b) => b.version - a.version);
  const diffBox = h("div", { id: "diff" });
  fill($("history"), h("h3", null, "版本历史"),
    h("table", null, h("tbody", null, versions.map((v) => h("tr", { dataset: { version: String(v.version) } },
      h("td", { class: "mono" }, "v" + v.version), h("td", null, VERSION_ACTIONS[v.action] || v.action), h("td", null, v.changed_by), h("td", null, fmtTime(v.changed_at)),
      h("td", { class: "small muted" }, v.changed_fields.map((f) => FIELDS[f] || f).join("、")),
      h("td", null, v.version > 1 ? h("button", { type: "button", class: "show-diff", onclick: () => diff(versions, v, diffBox) }, "对比上一版") : null))))),
    diffBox);
}

function diff(versions, v, box) {
  const before = (versions.find((x) => x.version === v.version - 1) || {}).snapshot || {};
  const after = v.snapshot || {};
  const changed = Object.keys(FIELDS).filter((f) => JSON.stringify(before[f] ?? null) !== JSON.stringify(after[f] ?? null));
  fill(box, h("h3", null, "v" + (v.version - 1) + " → v" + v.version),
    changed.length ? h("table", null, h("tbody", null, changed.map((f) => h("tr", null, h("th", null, FIELDS[f]),
      h("td", null, h("div", { class: "diff-del" }, show(before[f])), h("div", { class: "diff-add" }, show(after[f]))))))) : h("p", { class: "muted" }, "内容未变（仅状态或元数据）"));
}

// the importer's reasons are "field: problem"; the field is named as the editors know it
const PROBLEMS = [[/is required/, "必填"], [/unknown unit/, "未知单位"], [/invalid date|not a valid date/i, "日期格式不对"]];
function reason(text) {
  let out = String(text);
  const m = out.match(/^([a-z_]+): (.*)$/);
  if (m && FIELDS[m[1]]) out = FIELDS[m[1]] + "：" + m[2];
  for (const [re, zh] of PROBLEMS) out = out.replace(re, zh);
  return out;
}

// -- import and export -----------------------------------------------------------------------

function report(r, rejected) {
  const head = rejected
    ? h("div", { class: "flash error" }, "共 " + r.rows + " 行，其中 " + r.error_count + " 行有错误，未导入任何内容。请修正后重新导入，或勾选“跳过有错误的行”。")
    : h("div", { class: "flash ok" }, "导入完成：新建 " + r.created + " 条，更新 " + r.updated + " 条，未变 " + r.unchanged + " 条" + (r.error_count ? "；跳过有错误的 " + r.error_count + " 行" : "") + "。");
  fill($("import-report"), h("header", null, h("h2", null, "导入结果")), head,
    r.errors.length ? h("table", { id: "row-errors" }, h("thead", null, h("tr", null, h("th", null, "行号"), h("th", null, "编号"), h("th", null, "错误"))),
      h("tbody", null, r.errors.map((e) => h("tr", null, h("td", { class: "num" }, String(e.row)), h("td", { class: "mono" }, e.id || "—"), h("td", { class: "error-text", title: e.reason }, reason(e.reason)))))) : null,
    r.ignored_columns.length ? h("p", { class: "small muted" }, "未识别的列：" + r.ignored_columns.join("、")) : null);
}

async function importFile(ev) {
  ev.preventDefault();
  const file = $("import-file").files[0];
  if (!file) { flash("请选择要导入的文件"); return; }
  const form = new FormData();
  form.append("file", file, file.name);
  const q = new URLSearchParams({ kind: $("import-kind").value });
  if ($("import-partial").checked) q.set("partial", "1");
  try {
    report(await api("POST", "/api/kb/import?" + q, form), false);
  } catch (e) {
    if (e instanceof ApiError && e.body.report) { report(e.body.report, true); return; }
    throw e;
  }
}

// -- misses, flagged, providers --------------------------------------------------------------

async function loadMisses() {
  const data = await api("GET", "/api/kb/misses?days=30");
  if (!data.misses.length) { fill($("misses"), empty("最近没有答不上的问题")); return; }
  fill($("misses"), h("table", null, h("thead", null, h("tr", null, ["市民的问题", "最接近的条目", "置信度", "时间", ""].map((t) => h("th", null, t)))),
    h("tbody", null, data.misses.map((m) => h("tr", { dataset: { id: String(m.id) } }, h("td", null, m.question), h("td", { class: "mono small" }, m.top_entry_id || "—"),
      h("td", { class: "num" }, m.confidence == null ? "—" : Math.round(m.confidence * 100) + "%"), h("td", null, fmtTime(m.created_at)),
      h("td", null, h("button", { type: "button", class: "to-entry", onclick: () => { pick("entries"); renderEditor(null, { question: m.question }); $("f-answer").focus(); } }, "转为条目")))))));
}

async function loadFlagged() {
  const data = await api("GET", "/api/kb/feedback/stats?days=90");
  const rows = data.entries.filter((e) => e.not_helpful > 0);
  if (!rows.length) { fill($("flagged"), empty("没有被市民评价为“没有帮助”的条目")); return; }
  fill($("flagged"), h("table", null, h("thead", null, h("tr", null, ["条目", "问题", "回答次数", "有帮助", "没帮助", "没帮助比例", ""].map((t) => h("th", null, t)))),
    h("tbody", null, rows.map((e) => h("tr", null, h("td", { class: "mono" }, e.entry_id), h("td", null, e.question, e.often_fails ? [" ", h("span", { class: "tag red" }, "经常无效")] : null),
      h("td", { class: "num" }, String(e.answers)), h("td", { class: "num" }, String(e.helpful)), h("td", { class: "num" }, String(e.not_helpful)),
      h("td", { class: "num" }, e.failure_share == null ? "—" : Math.round(e.failure_share * 100) + "%"),
      h("td", null, h("button", { type: "button", onclick: guard(async () => { pick("entries"); await openEntry(e.entry_id); }) }, "修改")))))));
}

async function loadProviders() {
  const data = await api("GET", "/api/kb/providers");
  if (!data.providers.length) { fill($("providers"), empty("还没有服务商，可在“导入导出”中导入")); return; }
  fill($("providers"), h("table", null, h("thead", null, h("tr", null, ["名称", "类别", "电话", "区域", "营业时间", "关键词"].map((t) => h("th", null, t)))),
    h("tbody", null, data.providers.map((p) => h("tr", null, h("td", null, p.name), h("td", null, p.category), h("td", { class: "mono" }, p.phone),
      h("td", null, p.area || "全市"), h("td", null, p.hours || "—"), h("td", { class: "small" }, p.keywords.join("、")))))));
}

const LOADERS = { entries: loadEntries, import: async () => {}, misses: loadMisses, flagged: loadFlagged, providers: loadProviders };

boot({
  page: "kb", title: "知识库", roles: ["knowledge_editor"],
  init: async () => {
    units = (await api("GET", "/api/staff/units")).units;
    $("search").addEventListener("submit", guard(async (ev) => { ev.preventDefault(); await loadEntries(); }));
    $("search-status").addEventListener("change", guard(loadEntries));
    $("new-entry").addEventListener("click", () => { renderEditor(null); $("f-question").focus(); });
    $("import-form").addEventListener("submit", guard(importFile));
    for (const [kind, label] of [["entries", "条目"], ["providers", "服务商"]]) {
      for (const fmt of ["xlsx", "csv", "jsonl"]) {
        $("exports").append(h("button", { type: "button", dataset: { kind, fmt }, onclick: guard(() => download("/api/kb/export?kind=" + kind + "&format=" + fmt, "kb-" + kind + "." + fmt)) }, label + " ." + fmt));
      }
    }
    fill($("import-report"), h("header", null, h("h2", null, "导入结果")), empty("选择文件导入后，在此查看每一行的结果"));
    renderEditor(null);
    pick = tabs($("tabs"), VIEWS, guard(async (key) => {
      for (const k of Object.keys(VIEWS)) $("view-" + k).hidden = k !== key;
      document.body.dataset.view = key;
      await LOADERS[key]();
    }));
    pick("entries");
  },
});
