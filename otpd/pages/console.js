// otpd console: polls /console/api/state, streams /console/api/events.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function stats(dl, entries) {
  dl.replaceChildren();
  for (const [k, v] of entries) {
    const d = el("div");
    d.append(el("dt", k), el("dd", String(v)));
    dl.append(d);
  }
}

function chart(series) {
  const svg = $("chart");
  svg.replaceChildren();
  const W = 600, H = 140, n = 150;
  const maxRps = Math.max(1, ...series.map((s) => s.rps));
  const maxWin = Math.max(1, ...series.map((s) => s.window || s.window_in_use));
  const x = (i) => W - (series.length - 1 - i) * (W / n);
  series.forEach((s, i) => {
    const h = (s.window_in_use / maxWin) * H;
    const r = document.createElementNS(SVG, "rect");
    r.setAttribute("class", "win");
    r.setAttribute("x", x(i) - 3);
    r.setAttribute("y", H - h);
    r.setAttribute("width", 3);
    r.setAttribute("height", h);
    svg.append(r);
  });
  if (series.length > 1) {
    const p = document.createElementNS(SVG, "polyline");
    p.setAttribute("class", "rps");
    p.setAttribute("points", series.map((s, i) => x(i) + "," + (H - (s.rps / maxRps) * H)).join(" "));
    svg.append(p);
  }
  const t = document.createElementNS(SVG, "text");
  t.setAttribute("class", "axis");
  t.setAttribute("x", 4);
  t.setAttribute("y", 155);
  const last = series[series.length - 1];
  t.textContent = "max " + maxRps.toFixed(1) + " req/s, window " + maxWin + (last ? "; now " + last.rps.toFixed(1) + " req/s, " + last.window_in_use + " in use" : "; no samples yet");
  svg.append(t);
}

async function refresh() {
  let s;
  try {
    const r = await fetch("/console/api/state", { credentials: "same-origin" });
    if (r.status === 401) { location.reload(); return; }
    s = await r.json();
  } catch (e) {
    return;
  }
  $("smsc").textContent = (s.embedded ? "embedded simulator at " : "SMSC ") + s.smsc;
  const b = s.binds;
  stats($("binds"), [["state", b.up > 0 ? "up" : "down"], ["binds up", b.up + " of " + b.configured], ["binds down", b.down],
    ["mode", b.mode], ["window in use", b.window_in_use + " / " + b.window], ["requests sent", b.sent], ["received", b.received],
    ["reconnects", b.reconnects], ["throttled", b.throttled], ["uncertain", b.uncertain]]);
  $("bind-errors").replaceChildren(...(b.last_errors || []).map((e) => el("li", e)));
  chart(s.series || []);
  const order = ["created", "approved", "max_attempts_reached", "canceled", "expired"];
  const ch = s.challenges || {};
  stats($("challenges"), order.map((k) => [k, ch[k] || 0]).concat(Object.keys(ch).filter((k) => !order.includes(k)).map((k) => [k, ch[k]])));
  stats($("messages"), Object.entries(s.messages || {}).sort());
  $("conversion").replaceChildren(...(s.conversion || []).map((c) => {
    const tr = el("tr");
    tr.append(el("td", "+" + c.country.replace(/^\+/, "")), el("td", String(c.sends)), el("td", String(c.verified)), el("td", (c.rate * 100).toFixed(0) + "%"));
    return tr;
  }));
  webhooks(s.webhooks);
}

function webhooks(w) {
  const empty = $("hooks-empty"), table = $("hooks-table");
  if (!w || w.error) {
    $("hook-counts").replaceChildren();
    empty.textContent = (w && w.error) || "No webhook data.";
    empty.hidden = false;
    table.hidden = true;
    return;
  }
  stats($("hook-counts"), Object.entries(w.counts || {}));
  const rows = w.troubled || [];
  empty.textContent = "No failing webhook deliveries: every report was posted or is waiting for its first try.";
  empty.hidden = rows.length > 0;
  table.hidden = rows.length === 0;
  $("webhooks").replaceChildren(...rows.map((h) => {
    const tr = el("tr", undefined, "hook-" + h.state);
    tr.dataset.message = h.message_id;
    tr.append(el("td", new Date(h.created_at).toLocaleTimeString()), el("td", h.message_id), el("td", h.kind), el("td", h.status),
      el("td", h.state), el("td", String(h.attempts)), el("td", h.next_attempt_at ? new Date(h.next_attempt_at).toLocaleTimeString() : "—"),
      el("td", h.url, "url"), el("td", h.last_error || "", "error-text"));
    return tr;
  }));
}

function visible(tr) {
  const st = $("f-status").value;
  const pre = $("f-prefix").value.trim().replace(/\s/g, "");
  return (!st || tr.dataset.state === st) && (!pre || tr.dataset.phone.startsWith(pre) || tr.dataset.phone.startsWith("+" + pre));
}

function applyFilters() {
  for (const tr of $("reports").children) tr.hidden = !visible(tr);
}

function stream() {
  const es = new EventSource("/console/api/events");
  es.onopen = () => { $("stream-state").textContent = "live"; };
  es.onerror = () => { $("stream-state").textContent = "reconnecting…"; };
  es.addEventListener("report", (m) => {
    const e = JSON.parse(m.data);
    const tr = el("tr", undefined, "st-" + e.state);
    tr.dataset.state = e.state;
    tr.dataset.phone = e.phone || "";
    tr.append(el("td", new Date(e.at).toLocaleTimeString()), el("td", e.phone), el("td", e.state),
      el("td", [e.stat, e.err].filter(Boolean).join(" ")), el("td", e.message_id), el("td", e.smsc_id || ""));
    tr.hidden = !visible(tr);
    const body = $("reports");
    body.prepend(tr);
    while (body.children.length > 500) body.lastChild.remove();
  });
}

$("f-status").addEventListener("change", applyFilters);
$("f-prefix").addEventListener("input", applyFilters);
refresh();
setInterval(refresh, 2000);
stream();
