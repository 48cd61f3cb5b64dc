// The agent workspace. Everything citizens (and the bot) wrote goes in via textContent.
const $ = (id) => document.getElementById(id);
const TYPES = { consult: "咨询", complain: "投诉", seek_help: "求助", suggest: "建议", report: "举报", praise: "表扬" };
const REASONS = { asked_for_agent: "要求人工", bot_unsure: "机器人无法理解", emergency: "紧急", angry: "情绪激动" };
let token = sessionStorage.getItem("staff-token");
let current = null;
let currentChannel = null;
let socket = null;
let arrived = null; // messages pushed while a conversation's history is being read
const queue = new Map();

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text != null) node.textContent = String(text);
  return node;
}

async function api(method, path, body) {
  const resp = await fetch(path, {
    method,
    headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await resp.json().catch(() => ({}));
  if (resp.status === 401) { sessionStorage.removeItem("staff-token"); location.reload(); }
  if (!resp.ok) throw new Error(data.reason || data.error || String(resp.status));
  return data;
}

function status(text) { $("status").textContent = text; }

// -- queue ------------------------------------------------------------------------------

function renderQueue() {
  const list = $("queue");
  list.replaceChildren();
  for (const item of queue.values()) {
    const li = el("li");
    li.dataset.id = String(item.conversation_id);
    li.dataset.mode = item.mode;
    for (const f of item.flags) li.append(el("span", "flag", REASONS[f] || f));
    const mode = item.mode === "agent" ? "已接入 " + (item.agent || "") : REASONS[item.handoff_reason] || item.mode;
    li.append(el("b", null, "#" + item.conversation_id + " " + item.channel + " · " + mode));
    li.append(el("div", "why", item.last_text || ""));
    li.addEventListener("click", () => open(item.conversation_id));
    list.append(li);
  }
}

async function loadQueue() {
  const data = await api("GET", "/api/agent/queue");
  queue.clear();
  for (const item of data.items) queue.set(item.conversation_id, item);
  renderQueue();
}

// -- one conversation ---------------------------------------------------------------------

function readingText(nlu) {
  if (!nlu) return "";
  const units = (nlu.units || []).slice(0, 2).map((u) => u.code + " " + Math.round(u.probability * 100) + "%").join("，");
  const ents = nlu.entities || {};
  const parts = [
    "意图 " + nlu.intent + " " + Math.round((nlu.intent_confidence || 0) * 100) + "%",
    "类型 " + (TYPES[nlu.request_type] || nlu.request_type) + " " + Math.round((nlu.request_type_confidence || 0) * 100) + "%",
    "单位 " + (units || "—"),
  ];
  if (ents.address) parts.push("地址 " + ents.address.text);
  if (ents.phones && ents.phones.length) parts.push("电话 " + ents.phones.join("、"));
  if (nlu.emergency) parts.push("紧急 " + nlu.emergency.kind);
  return parts.join(" · ");
}

function addMessage(m) {
  const citizen = currentChannel === "voice" ? "来电人" : "市民";
  const who = m.direction === "in" ? citizen : m.author === "agent" ? "坐席" : "机器人";
  const box = el("div", "msg " + m.direction + (m.author === "agent" ? " agent" : ""));
  box.dataset.id = String(m.id);
  box.append(el("b", null, who + "："), el("span", "text", m.text));
  if (m.nlu) box.append(el("div", "reading", readingText(m.nlu)));
  const old = $("history").querySelector('[data-id="' + m.id + '"]');
  if (old) { old.replaceWith(box); return; }
  // in the order they were written, whichever arrived first: the history or the push
  const later = [...$("history").children].find((c) => Number(c.dataset.id) > m.id);
  $("history").insertBefore(box, later || null);
}

// The socket sends the open conversation's messages (a phone call's transcript turns too) as
// they arrive; watching starts before the history is read so nothing falls between the two.
function watch(id) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "watch", conversation_id: id }));
}

async function open(id) {
  if (current != null && current !== id && socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify({ type: "unwatch", conversation_id: current }));
  }
  current = id;
  watch(id);
  arrived = [];
  let data;
  try {
    data = await api("GET", "/api/agent/conversations/" + id);
  } catch (e) { arrived = null; status(e.message); return; }
  if (current !== id) return; // another conversation was opened meanwhile
  currentChannel = data.channel;
  $("convo-title").textContent = "#" + id + "（" + data.channel + "，" + data.mode + "）";
  $("history").replaceChildren();
  data.messages.forEach(addMessage);
  // pushed while the history was being read: it may or may not be in it
  arrived.forEach(addMessage);
  arrived = null;
  await loadSuggestions();
}

async function loadSuggestions() {
  if (current == null) return;
  const id = current;
  const data = await api("GET", "/api/agent/conversations/" + id + "/suggestions");
  const box = $("suggestions");
  box.replaceChildren();
  const r = data.reading;
  $("reading").textContent = r
    ? "建议类型：" + (r.request_type_label || r.request_type) + " " + Math.round((r.request_type_confidence || 0) * 100) + "%；建议单位："
      + (r.units || []).slice(0, 3).map((u) => u.code + " " + Math.round(u.probability * 100) + "%").join("，")
    : "";
  for (const s of data.suggestions) {
    const card = el("div", "sug");
    card.dataset.source = s.source;
    card.dataset.ref = s.ref;
    card.append(el("div", "why", "#" + s.rank + " " + { kb: "知识库", similar_order: "相似工单", template: "模板" }[s.source] + " · " + s.score.toFixed(2) + " · " + s.why));
    card.append(el("div", "text", s.text));
    const use = el("button", "use", "采用");
    use.type = "button";
    use.addEventListener("click", async () => {
      $("reply").value = s.text;
      await feedback(id, s, true);
    });
    const skip = el("button", "skip", "不采用");
    skip.type = "button";
    skip.addEventListener("click", async () => { await feedback(id, s, false); card.remove(); });
    card.append(use, skip);
    box.append(card);
  }
  const d = data.draft;
  $("wo-type").value = d.request_type;
  $("wo-content").value = d.content || "";
  $("wo-location").value = d.location || "";
  $("wo-phone").value = d.contact_phone || "";
  $("wo-unit").value = d.lead_unit || "";
}

async function feedback(id, s, used) {
  await api("POST", "/api/agent/suggestions/feedback", { conversation_id: id, source: s.source, ref: s.ref, rank: s.rank, used });
  await loadStats();
}

async function loadStats() {
  const data = await api("GET", "/api/agent/stats");
  $("acceptance").textContent = data.acceptance_rate == null ? "—" : Math.round(data.acceptance_rate * 100) + "%（" + data.used + "/" + data.rated + "）";
}

async function act(what) {
  if (current == null) return;
  try {
    await api("POST", "/api/agent/conversations/" + current + "/" + what);
    status({ take: "已接入", release: "已交回机器人", close: "会话已结束" }[what]);
    await open(current);
  } catch (e) { status(e.message); }
}

async function send() {
  const text = $("reply").value;
  if (current == null || !text.trim()) return;
  try {
    const data = await api("POST", "/api/agent/conversations/" + current + "/reply", { text });
    $("reply").value = "";
    status("已发送（" + data.channel + "：" + data.delivery.status + "）");
  } catch (e) { status(e.message); }
}

async function dispatchOrder() {
  if (current == null) return;
  const body = {
    request_type: $("wo-type").value,
    content: $("wo-content").value,
    location: $("wo-location").value || null,
    contact_phone: $("wo-phone").value || null,
    lead_unit: $("wo-unit").value || null,
  };
  try {
    const data = await api("POST", "/api/agent/conversations/" + current + "/work-order", body);
    const out = $("wo-result");
    out.textContent = "工单 " + data.request_number + (data.dispatched ? " 已派发至 " + data.lead_unit_name : " 待人工派发");
    out.dataset.requestNumber = data.request_number;
  } catch (e) { $("wo-result").textContent = e.message; }
}

// -- live pushes --------------------------------------------------------------------------

function connect() {
  const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/api/agent/ws");
  socket = ws;
  ws.onopen = () => ws.send(JSON.stringify({ token }));
  ws.onmessage = (ev) => {
    const f = JSON.parse(ev.data);
    if (f.type === "ready") {
      document.body.dataset.live = "1";
      loadQueue();
      if (current != null) open(current); // what came while the socket was down
    }
    else if (f.type === "watching") document.body.dataset.watching = String(f.conversation_id);
    else if (f.type === "queue") { queue.set(f.item.conversation_id, f.item); renderQueue(); }
    else if (f.type === "queue_remove") { queue.delete(f.conversation_id); renderQueue(); }
    else if (f.type === "message" && f.conversation_id === current) {
      if (arrived) arrived.push(f.message);
      addMessage(f.message);
      if (f.message.direction === "in" && f.message.nlu) loadSuggestions();
    }
  };
  ws.onclose = () => { document.body.dataset.live = ""; document.body.dataset.watching = ""; setTimeout(connect, 2000); };
}

async function start() {
  $("login").hidden = true;
  $("app").hidden = false;
  const me = await api("GET", "/api/auth/me");
  $("me").textContent = me.display_name || me.username;
  connect();
  await loadStats();
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const resp = await fetch("/api/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: $("login-user").value, password: $("login-pass").value }),
  });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) { $("login-error").textContent = data.reason || "登录失败"; return; }
  if (!["agent", "supervisor"].includes(data.user.role)) { $("login-error").textContent = "此账号没有坐席权限"; return; }
  token = data.token;
  sessionStorage.setItem("staff-token", token);
  start();
});
$("take").addEventListener("click", () => act("take"));
$("release").addEventListener("click", () => act("release"));
$("close").addEventListener("click", () => act("close"));
$("send").addEventListener("click", send);
$("dispatch").addEventListener("click", dispatchOrder);
if (token) start();
