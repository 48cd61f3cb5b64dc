/* 12345 chat widget. Embed with one tag on any page:
 *   <script src="https://HOST/widget.js" defer></script>
 * Everything a citizen or the service writes is shown with textContent, never as HTML. */
(function () {
  "use strict";
  if (window.__hotline12345) return;
  window.__hotline12345 = true;

  var script = document.currentScript;
  var base = script ? new URL(script.src, location.href).origin : location.origin;
  var storeKey = "hotline12345.session";
  var sessionId = localStorage.getItem(storeKey);
  if (!sessionId) {
    sessionId = "w-" + (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2));
    localStorage.setItem(storeKey, sessionId);
  }

  var css = [
    "#h12345-btn{position:fixed;right:24px;bottom:24px;z-index:2147483000;background:#c8102e;color:#fff;border:0;border-radius:28px;padding:14px 20px;font-size:16px;cursor:pointer;box-shadow:0 4px 12px rgba(0,0,0,.25)}",
    "#h12345-box{position:fixed;right:24px;bottom:84px;z-index:2147483000;width:360px;max-width:calc(100vw - 32px);height:520px;max-height:calc(100vh - 120px);background:#fff;border-radius:12px;box-shadow:0 8px 28px rgba(0,0,0,.3);display:none;flex-direction:column;font:14px/1.5 system-ui,'PingFang SC','Microsoft YaHei',sans-serif;overflow:hidden}",
    "#h12345-box.open{display:flex}",
    "#h12345-head{background:#c8102e;color:#fff;padding:10px 14px;font-weight:600}",
    "#h12345-log{flex:1;overflow-y:auto;padding:12px;background:#f6f6f6}",
    ".h12345-msg{margin:6px 0;padding:8px 10px;border-radius:8px;max-width:85%;white-space:pre-wrap;word-break:break-word}",
    ".h12345-me{background:#c8102e;color:#fff;margin-left:auto}",
    ".h12345-bot{background:#fff;border:1px solid #e2e2e2}",
    ".h12345-err{background:#fff3cd;border:1px solid #e0c36c}",
    ".h12345-number{font-weight:700;color:#c8102e}",
    "#h12345-form{display:flex;border-top:1px solid #ddd}",
    "#h12345-input{flex:1;border:0;padding:12px;font-size:15px;outline:none}",
    "#h12345-send{border:0;background:#c8102e;color:#fff;padding:0 18px;font-size:15px;cursor:pointer}"
  ].join("\n");
  var style = document.createElement("style");
  style.textContent = css;
  document.head.appendChild(style);

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text != null) node.textContent = text;
    return node;
  }

  var button = el("button", { id: "h12345-btn", type: "button", "aria-controls": "h12345-box" }, "12345 在线咨询");
  var box = el("div", { id: "h12345-box", role: "dialog", "aria-label": "12345 市民服务在线咨询" });
  var head = el("div", { id: "h12345-head" }, "12345 市民服务热线 · 在线服务");
  var log = el("div", { id: "h12345-log", "aria-live": "polite" });
  var form = el("form", { id: "h12345-form" });
  var input = el("input", { id: "h12345-input", type: "text", maxlength: "2000", autocomplete: "off", placeholder: "请描述您的问题…" });
  var send = el("button", { id: "h12345-send", type: "submit" }, "发送");
  form.appendChild(input); form.appendChild(send);
  box.appendChild(head); box.appendChild(log); box.appendChild(form);
  document.body.appendChild(button); document.body.appendChild(box);

  // the stored conversation goes first, above anything shown since the page opened
  var past = el("div", {});
  log.appendChild(past);
  var greeting = null;

  function show(text, cls, into) {
    var item = el("div", { "class": "h12345-msg " + cls }, text);
    (into || log).appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  // what the service wrote on its own (an agent, the revisit question) has an id: it may come
  // both with the stored history and pushed on the socket, and is shown once
  var seen = {};
  function showStored(m, into) {
    if (m.id != null) {
      if (seen[m.id]) return;
      seen[m.id] = true;
    }
    var cls = m.direction === "in" ? "h12345-me" : m.author === "agent" ? "h12345-bot h12345-agent" : "h12345-bot";
    show(m.text, cls, into);
  }

  // the conversation so far, e.g. a revisit question posted while the page was closed
  fetch(base + "/api/chat/messages?session_id=" + encodeURIComponent(sessionId))
    .then(function (r) { return r.ok ? r.json() : { messages: [] }; })
    .then(function (data) {
      var stored = data.messages || [];
      stored.forEach(function (m) { showStored(m, past); });
      if (stored.length && greeting) { greeting.remove(); greeting = null; }
    }, function () {});

  function showResult(data) {
    if (data.error === "rate_limited") { show("发送太频繁，请" + (data.retry_after || 60) + "秒后再试。", "h12345-err"); return; }
    if (data.error) { show(data.reason || data.error, "h12345-err"); return; }
    (data.replies || []).forEach(function (r) { show(r, "h12345-bot"); });
    if (data.request_number) {
      var n = show("诉求编号：" + data.request_number, "h12345-bot h12345-number");
      n.setAttribute("data-request-number", data.request_number);
    }
  }

  var ws = null, pending = {};
  function connect() {
    try {
      ws = new WebSocket(base.replace(/^http/, "ws") + "/api/chat/ws");
    } catch (e) { ws = null; return; }
    ws.onopen = function () { ws.send(JSON.stringify({ type: "subscribe", session_id: sessionId })); };
    ws.onmessage = function (ev) {
      var data = JSON.parse(ev.data);
      if (data.type === "agent_message") {
        showStored({ id: data.id, direction: "out", author: data.author || "agent", text: data.text });
        return;
      }
      if (data.client_message_id && pending[data.client_message_id]) delete pending[data.client_message_id];
      showResult(data);
    };
    ws.onclose = function () { ws = null; setTimeout(connect, 2000); };
  }

  function post(payload) {
    return fetch(base + "/api/chat/messages", {
      method: "POST",
      headers: { "Content-Type": "application/json; charset=utf-8" },
      body: JSON.stringify(payload)
    }).then(function (r) { return r.json(); }).then(showResult, function () {
      show("网络异常，消息未送达，请稍后重试。", "h12345-err");
    });
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = input.value;
    if (!text.trim()) return;
    input.value = "";
    show(text, "h12345-me");
    var payload = { session_id: sessionId, client_message_id: "c-" + Date.now() + "-" + Math.random().toString(16).slice(2, 10), text: text };
    if (ws && ws.readyState === 1) {
      pending[payload.client_message_id] = payload;
      ws.send(JSON.stringify(payload));
      // if no answer comes over the socket, the REST call is safe: the same id is idempotent
      setTimeout(function () { if (pending[payload.client_message_id]) { delete pending[payload.client_message_id]; post(payload); } }, 8000);
    } else {
      post(payload);
    }
  });

  button.addEventListener("click", function () {
    box.classList.toggle("open");
    if (box.classList.contains("open")) {
      if (log.childNodes.length === 1 && !past.childNodes.length) {
        greeting = show("您好，这里是12345市民服务热线。请直接描述您要咨询、投诉、求助或建议的事项。", "h12345-bot");
      }
      input.focus();
    }
  });
  connect();
})();
