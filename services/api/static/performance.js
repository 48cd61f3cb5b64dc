"use strict";
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const pct = (r) => (r === null || r === undefined ? "—" : (r * 100).toFixed(1) + "%");
const sum = (rows, k) => rows.reduce((a, r) => a + r[k], 0);
const ratio = (a, b) => (b ? a / b : null);

function el(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function bars(rows) {
  const box = $("bars");
  box.textContent = "";
  if (!rows.length) { box.textContent = "本期无数据"; return; }
  const w = 900, rowH = 26, left = 160, h = rows.length * rowH + 20;
  const max = Math.max(...rows.map((r) => r.volume), 1);
  const svg = el("svg", { width: w, height: h, viewBox: `0 0 ${w} ${h}`, "data-chart": "bars" });
  rows.forEach((r, i) => {
    const y = 10 + i * rowH;
    const full = ((w - left - 160) * r.volume) / max;
    const done = full * (r.completion_rate || 0);
    svg.append(el("text", { x: 4, y: y + 15 }, r.label));
    svg.append(el("rect", { x: left, y, width: full, height: 18, fill: "#f4c7c3", "data-key": r.key }));
    svg.append(el("rect", { x: left, y, width: done, height: 18, fill: "#b71c1c" }));
    svg.append(el("text", { x: left + full + 6, y: y + 14 }, `${r.volume}件 办结${pct(r.completion_rate)}`));
  });
  box.append(svg);
}

function trend(rows) {
  const box = $("trend");
  box.textContent = "";
  if (!rows.length) { box.textContent = "本期无数据"; return; }
  const w = 900, h = 220, pad = 40;
  const max = Math.max(...rows.map((r) => r.volume), 1);
  const step = rows.length > 1 ? (w - 2 * pad) / (rows.length - 1) : 0;
  const x = (i) => pad + i * step;
  const yv = (v) => h - pad - ((h - 2 * pad) * v) / max;
  const yr = (v) => h - pad - (h - 2 * pad) * v;
  const svg = el("svg", { width: w, height: h, viewBox: `0 0 ${w} ${h}`, "data-chart": "trend" });
  svg.append(el("line", { x1: pad, y1: h - pad, x2: w - pad, y2: h - pad, stroke: "#9aa5b1" }));
  const volume = rows.map((r, i) => `${x(i)},${yv(r.volume)}`).join(" ");
  svg.append(el("polyline", { points: volume, fill: "none", stroke: "#b71c1c", "stroke-width": 2 }));
  const sat = rows.filter((r) => r.satisfaction_rate !== null);
  if (sat.length) {
    const pts = rows.map((r, i) => (r.satisfaction_rate === null ? null : `${x(i)},${yr(r.satisfaction_rate)}`)).filter(Boolean);
    svg.append(el("polyline", { points: pts.join(" "), fill: "none", stroke: "#1565c0", "stroke-width": 2, "stroke-dasharray": "5 3" }));
  }
  rows.forEach((r, i) => {
    svg.append(el("circle", { cx: x(i), cy: yv(r.volume), r: 3, fill: "#b71c1c" }));
    svg.append(el("text", { x: x(i) - 20, y: h - pad + 16 }, r.key));
    svg.append(el("text", { x: x(i) + 4, y: yv(r.volume) - 6 }, String(r.volume)));
  });
  svg.append(el("text", { x: w - 240, y: 14 }, "— 受理量   - - 回访满意率"));
  box.append(svg);
}

function table(rows, by) {
  const t = $("table");
  const cols = [["label", "名称"], ["volume", "受理量"], ["completion_rate", "办结率"], ["reply_rate", "回复率"],
    ["dispatch_on_time_rate", "派单及时率"], ["sign_for_on_time_rate", "签收及时率"], ["contact_on_time_rate", "联系及时率"], ["handling_on_time_rate", "办理及时率"],
    ["revisits", "回访数"], ["satisfaction_rate", "满意率"], ["adoption_rate", "建言采纳率"], ["repeats", "重复诉求"]];
  t.textContent = "";
  const head = t.insertRow();
  for (const [, name] of cols) { const th = document.createElement("th"); th.textContent = name; head.append(th); }
  for (const r of rows) {
    const tr = t.insertRow();
    tr.dataset.key = r.key;
    for (const [k] of cols) tr.insertCell().textContent = k.endsWith("_rate") ? pct(r[k]) : r[k];
  }
  $("table-title").textContent = "分项明细（" + $("by").selectedOptions[0].textContent + "）";
}

function cards(rows) {
  const v = sum(rows, "volume");
  const items = [["受理量", v], ["办结率", pct(ratio(sum(rows, "completed"), v))], ["回复率", pct(ratio(sum(rows, "replied"), v))],
    ["回访满意率", pct(ratio(sum(rows, "revisit_satisfied"), sum(rows, "revisits")))],
    ["建言采纳率", pct(ratio(sum(rows, "suggestions_adopted"), sum(rows, "suggestions_decided")))]];
  const box = $("cards");
  box.textContent = "";
  for (const [name, value] of items) {
    const d = document.createElement("div");
    d.className = "card";
    d.dataset.name = name;
    d.append(name);
    const b = document.createElement("b");
    b.textContent = value;
    d.append(b);
    box.append(d);
  }
}

async function get(path) {
  const resp = await fetch(path);
  const body = await resp.json();
  if (!resp.ok) throw new Error(body.reason || body.error);
  return body;
}

async function load() {
  const q = new URLSearchParams();
  if ($("from").value) q.set("from", $("from").value);
  if ($("to").value) q.set("to", $("to").value);
  const by = $("by").value;
  $("error").textContent = "";
  try {
    const [main, weeks, topics] = await Promise.all([
      get(`/api/public/figures?by=${by}&${q}`), get(`/api/public/figures?by=week&${q}`), get(`/api/public/hot-topics?${q}`)]);
    $("from").value = main.from; $("to").value = main.to;
    $("csv").href = `/api/public/figures.csv?by=${by}&from=${main.from}&to=${main.to}`;
    cards(main.rows); bars(main.rows); trend(weeks.rows); table(main.rows, by);
    const t = $("topics");
    t.textContent = "";
    const head = t.insertRow();
    for (const name of ["周", "区域", "问题", "件数"]) { const th = document.createElement("th"); th.textContent = name; head.append(th); }
    for (const r of topics.topics) {
      const tr = t.insertRow();
      for (const v of [r.week, r.area, r.label, r.reports]) tr.insertCell().textContent = v;
    }
    document.body.dataset.loaded = "1";
  } catch (err) {
    $("error").textContent = "加载失败：" + err.message;
  }
}

const params = new URLSearchParams(location.search);
for (const k of ["from", "to", "by"]) if (params.get(k)) $(k).value = params.get(k);
$("filters").addEventListener("submit", (e) => { e.preventDefault(); load(); });
load();
