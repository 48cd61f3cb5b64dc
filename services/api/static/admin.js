// The administrators' page: staff accounts (create, role, unit, reset password, disable), the
// units' contact phones, and the working-day calendar for years the built-in one does not know.
import { $, h, fill, api, boot, flash, guard, empty, fmtTime, fmtDay, tabs, user, ROLE_LABELS } from "/staff.js";

const VIEWS = { users: "账号管理", units: "单位电话", calendar: "工作日历" };
let units = [];
let unitName = {};

// -- accounts --------------------------------------------------------------------------------

function userRow(u) {
  const me = user();
  const pass = h("input", { type: "password", placeholder: "新密码", autocomplete: "new-password", class: "new-pass", "aria-label": "新密码 " + u.username, style: "width: 120px" });
  return h("tr", { dataset: { username: u.username } },
    h("td", null, h("b", null, u.username), h("div", { class: "small muted" }, u.display_name || "")),
    h("td", null, ROLE_LABELS[u.role] || u.role),
    h("td", null, u.unit_code ? unitName[u.unit_code] || u.unit_code : "—"),
    h("td", null, h("span", { class: "tag " + (u.active ? "green" : "") }, u.active ? "启用" : "已停用")),
    h("td", { class: "small" }, u.last_login_at ? fmtTime(u.last_login_at) : "从未登录"),
    h("td", null, h("form", { class: "row", onsubmit: guard(async (ev) => {
      ev.preventDefault();
      await api("POST", "/api/admin/users/" + u.id + "/password", { password: pass.value });
      flash("已重置 " + u.username + " 的密码，其登录已全部失效", "ok");
      await loadUsers();
    }) }, pass, h("button", { type: "submit", class: "reset" }, "重置密码"),
    u.id === me.id ? null : h("button", { type: "button", class: u.active ? "danger toggle" : "toggle", onclick: guard(async () => {
      await api("POST", "/api/admin/users/" + u.id + "/active", { active: !u.active });
      flash((u.active ? "已停用 " : "已启用 ") + u.username, "ok");
      await loadUsers();
    }) }, u.active ? "停用" : "启用"))));
}

async function loadUsers() {
  const data = await api("GET", "/api/admin/users");
  $("user-count").textContent = String(data.users.length);
  if (!data.users.length) { fill($("users"), empty("还没有账号")); return; }
  fill($("users"), h("table", { id: "users-table" },
    h("thead", null, h("tr", null, ["账号", "角色", "单位", "状态", "最近登录", "操作"].map((t) => h("th", null, t)))),
    h("tbody", null, data.users.map(userRow))));
}

async function createUser(ev) {
  ev.preventDefault();
  const body = {
    username: $("u-name").value, display_name: $("u-display").value || null, role: $("u-role").value,
    unit: $("u-role").value === "unit_handler" ? $("u-unit").value || null : null, password: $("u-pass").value,
  };
  const made = await api("POST", "/api/admin/users", body);
  flash("已创建账号 " + made.username + "（" + ROLE_LABELS[made.role] + "）", "ok");
  for (const id of ["u-name", "u-display", "u-pass"]) $(id).value = "";
  await loadUsers();
}

// -- unit phones -------------------------------------------------------------------------------

function renderUnits() {
  const q = $("unit-filter").value.trim();
  const shown = units.filter((u) => !q || u.name.includes(q) || u.code.includes(q));
  if (!shown.length) { fill($("units"), empty("没有相符的单位")); return; }
  fill($("units"), h("table", null, h("thead", null, h("tr", null, ["单位", "代码", "联系电话", ""].map((t) => h("th", null, t)))),
    h("tbody", null, shown.map((u) => {
      const phone = h("input", { value: u.contact_phone || "", placeholder: "未设置", "aria-label": u.name + " 联系电话", class: "phone" });
      return h("tr", { dataset: { unit: u.code } }, h("td", null, u.name), h("td", { class: "mono small" }, u.code),
        h("td", null, h("form", { class: "row", onsubmit: guard(async (ev) => {
          ev.preventDefault();
          const done = await api("PUT", "/api/admin/units/" + u.code + "/contact", { phone: phone.value });
          u.contact_phone = done.contact_phone;
          flash(u.name + " 的联系电话已更新", "ok");
        }) }, phone, h("button", { type: "submit" }, "保存"))), h("td", null));
    }))));
}

// -- calendar --------------------------------------------------------------------------------

async function loadCalendar() {
  const year = $("year").value;
  const c = await api("GET", "/api/admin/calendar?year=" + encodeURIComponent(year));
  const list = (days) => (days.length ? days.map((d) => h("span", { class: "tag", style: "margin: 2px" }, fmtDay(d))) : h("span", { class: "muted" }, "无"));
  fill($("calendar"),
    c.source === "statutory"
      ? h("div", { class: "flash ok" }, c.year + " 年的法定节假日系统已内置；录入的日期优先。")
      : h("div", { class: "flash error" }, c.year + " 年的法定节假日系统尚不知道：未录入时按周一至周五上班计算，请录入放假和调休安排。"),
    h("div", { class: "totals" }, h("div", { class: "stat" }, h("span", { class: "muted small" }, "工作日"), h("b", { id: "working-days" }, String(c.working_days))),
      h("div", { class: "stat" }, h("span", { class: "muted small" }, "工作日放假"), h("b", null, String(c.rest_days_on_weekdays.length))),
      h("div", { class: "stat" }, h("span", { class: "muted small" }, "周末上班"), h("b", null, String(c.working_weekend_days.length)))),
    h("h3", null, "已录入"),
    c.entered.length ? h("table", { id: "entered" }, h("thead", null, h("tr", null, ["日期", "类型", "名称", "录入人", ""].map((t) => h("th", null, t)))),
      h("tbody", null, c.entered.map((d) => h("tr", { dataset: { day: fmtDay(d.day) } }, h("td", null, fmtDay(d.day)),
        h("td", null, h("span", { class: "tag " + (d.workday ? "blue" : "red") }, d.workday ? "调休上班" : "放假")), h("td", null, d.name || "—"), h("td", null, d.created_by),
        h("td", null, h("button", { type: "button", class: "danger", onclick: guard(async () => {
          await api("DELETE", "/api/admin/calendar/" + fmtDay(d.day));
          flash("已删除 " + fmtDay(d.day), "ok");
          await loadCalendar();
        }) }, "删除")))))) : empty("该年份还没有录入的日期"),
    h("h3", null, "工作日放假"), h("div", null, list(c.rest_days_on_weekdays)),
    h("h3", null, "周末上班"), h("div", null, list(c.working_weekend_days)));
}

async function saveDay(ev) {
  ev.preventDefault();
  const day = $("d-day").value;
  if (!day) { flash("请选择日期"); return; }
  await api("PUT", "/api/admin/calendar/" + day, { workday: $("d-kind").value === "workday", name: $("d-name").value });
  flash("已保存 " + day + "，相关工单时限已重新计算", "ok");
  $("year").value = day.slice(0, 4);
  await loadCalendar();
}

const LOADERS = { users: loadUsers, units: async () => renderUnits(), calendar: loadCalendar };

boot({
  page: "admin", title: "系统管理", roles: ["admin"],
  init: async () => {
    units = (await api("GET", "/api/staff/units")).units;
    unitName = Object.fromEntries(units.map((u) => [u.code, u.name]));
    for (const [k, v] of Object.entries(ROLE_LABELS)) $("u-role").append(h("option", { value: k }, v));
    $("u-unit").append(h("option", { value: "" }, "请选择单位"), ...units.map((u) => h("option", { value: u.code }, u.name)));
    $("u-role").addEventListener("change", () => { $("u-unit").disabled = $("u-role").value !== "unit_handler"; });
    $("create-user").addEventListener("submit", guard(createUser));
    $("unit-filter").addEventListener("input", renderUnits);
    $("year").value = String(new Date().getFullYear() + 1);
    $("load-year").addEventListener("click", guard(loadCalendar));
    $("day-form").addEventListener("submit", guard(saveDay));
    const pick = tabs($("tabs"), VIEWS, guard(async (key) => {
      for (const k of Object.keys(VIEWS)) $("view-" + k).hidden = k !== key;
      document.body.dataset.view = key;
      await LOADERS[key]();
    }));
    pick("users");
  },
});
