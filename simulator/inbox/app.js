// smscsim inbox: the messages as they arrive (server-sent events from
// /api/events), newest first, with the codes highlighted; a detail view;
// buttons for the API's controls. Text from messages is only ever set as
// textContent, never parsed as HTML.
"use strict";

const $ = (sel) => document.querySelector(sel);
const byId = new Map(); // id -> message
let order = []; // ids, newest first
let selected = null;
let source = null;

const encodings = { 0: "GSM 03.38", 1: "IA5 (ASCII)", 2: "binary", 3: "Latin-1", 4: "binary", 8: "UCS-2" };

function ns() { return $("#ns").value.trim(); }

function query(extra) {
  const p = new URLSearchParams(extra || {});
  if (ns()) p.set("system_id", ns());
  const s = p.toString();
  return s ? "?" + s : "";
}

async function api(method, path, body) {
  const opt = { method, headers: {} };
  if (body !== undefined) {
    opt.headers["Content-Type"] = "application/json";
    opt.body = JSON.stringify(body);
  }
  const r = await fetch(path, opt);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!r.ok) {
    const msg = data && data.error ? data.error.message : r.status + " " + r.statusText;
    throw new Error(msg);
  }
  return data;
}

function say(text) { $("#status").textContent = text; }

// highlighted appends text to el with the codes in <mark>.
function highlighted(el, text, codes) {
  el.textContent = "";
  if (!codes || codes.length === 0) { el.textContent = text; return; }
  const esc = codes.map((c) => c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const parts = text.split(new RegExp("(" + esc.join("|") + ")"));
  parts.forEach((part, i) => {
    if (i % 2 === 1) {
      const m = document.createElement("mark");
      m.textContent = part;
      el.appendChild(m);
    } else if (part) {
      el.appendChild(document.createTextNode(part));
    }
  });
}

function receiptText(m) {
  if (m.receipt) return m.receipt.stat;
  if (m.held) return "held";
  return m.state === "ENROUTE" ? "pending" : m.state;
}

function matches(m) {
  const q = $("#q").value.trim().toLowerCase();
  if (!q) return true;
  return [m.from, m.to, m.text, m.id, m.system_id, (m.codes || []).join(" ")].some((v) => (v || "").toLowerCase().includes(q));
}

function cell(tr, cls, text) {
  const td = document.createElement("td");
  td.className = cls;
  if (text !== undefined) td.textContent = text;
  tr.appendChild(td);
  return td;
}

function row(m) {
  const tr = document.createElement("tr");
  tr.dataset.id = m.id;
  cell(tr, "time", new Date(m.received_at).toLocaleTimeString()).title = m.received_at;
  cell(tr, "ns", m.system_id);
  cell(tr, "from", m.from);
  cell(tr, "to", m.to);
  highlighted(cell(tr, "text"), m.text || (m.data_hex ? "(binary) " + m.data_hex : ""), m.codes);
  cell(tr, "enc", encodings[m.data_coding] || "dc " + m.data_coding);
  cell(tr, "segs", m.complete ? String(m.segments) : m.segments_received + "/" + m.segments);
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = m.id;
  b.setAttribute("aria-label", "Show message " + m.id);
  cell(tr, "id").appendChild(b);
  const st = cell(tr, "state", receiptText(m));
  if (m.receipt) st.classList.add("stat-" + m.receipt.stat);
  if (m.id === selected) tr.classList.add("selected");
  tr.addEventListener("click", () => openDetail(m.id));
  return tr;
}

function render() {
  const body = $("#messages tbody");
  body.textContent = "";
  let n = 0;
  for (const id of order) {
    const m = byId.get(id);
    if (!m || !matches(m)) continue;
    body.appendChild(row(m));
    n++;
  }
  $("#count").textContent = "(" + n + ")";
  $("#empty").hidden = n > 0;
}

// upsert adds or replaces a message; a new one goes first.
function upsert(m, fresh) {
  if (streamed) streamed.set(m.id, m);
  const known = byId.has(m.id);
  byId.set(m.id, m);
  if (!known) order.unshift(m.id);
  const body = $("#messages tbody");
  const old = body.querySelector('tr[data-id="' + CSS.escape(m.id) + '"]');
  if (!matches(m)) { if (old) old.remove(); return; }
  const tr = row(m);
  if (old) old.replaceWith(tr);
  else {
    body.insertBefore(tr, body.firstChild);
    if (fresh) tr.classList.add("fresh");
    $("#empty").hidden = true;
    $("#count").textContent = "(" + body.children.length + ")";
  }
  if (m.id === selected) openDetail(m.id, true);
}

// streamed holds what the stream brought while a load was under way: the
// list loaded may have been taken before it.
let streamed = null;

async function load() {
  streamed = new Map();
  try {
    const data = await api("GET", "/api/messages" + query({ limit: "500" }));
    byId.clear();
    order = [];
    for (const m of data.messages) { byId.set(m.id, m); order.push(m.id); }
    for (const [id, m] of streamed) {
      if (!byId.has(id)) order.unshift(id);
      byId.set(id, m);
    }
    render();
  } catch (e) { say("Loading failed: " + e.message); }
  streamed = null;
}

function listen() {
  if (source) source.close();
  $("#conn").textContent = "connecting…";
  source = new EventSource("/api/events" + query());
  // Subscribed once open: the list loaded then misses nothing (and again
  // after a reconnect, for what came while the stream was down).
  source.addEventListener("open", () => {
    $("#conn").textContent = "live";
    load();
  });
  source.addEventListener("error", () => { $("#conn").textContent = "reconnecting…"; });
  source.addEventListener("message", (ev) => {
    const m = JSON.parse(ev.data);
    upsert(m, true);
    say("New message to " + m.to + (m.code ? ", code " + m.code : ""));
  });
  source.addEventListener("receipt", (ev) => {
    const m = JSON.parse(ev.data);
    upsert(m, false);
    say("Receipt " + (m.receipt ? m.receipt.stat : "") + " for " + m.id);
  });
}

function field(dl, name, value) {
  if (value === undefined || value === null || value === "") return;
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  dd.textContent = String(value);
  dl.append(dt, dd);
}

function hexLines(h) {
  const out = [];
  for (let i = 0; i < h.length; i += 32) {
    const bytes = h.slice(i, i + 32).match(/../g) || [];
    out.push((i / 2).toString(16).padStart(4, "0") + "  " + bytes.join(" "));
  }
  return out.join("\n");
}

async function openDetail(id, quiet) {
  let m;
  try { m = await api("GET", "/api/messages/" + encodeURIComponent(id)); } catch (e) { say(e.message); return; }
  selected = m.id;
  for (const tr of document.querySelectorAll("#messages tbody tr")) tr.classList.toggle("selected", tr.dataset.id === m.id);
  $("#detail").hidden = false;
  $("#d-id").textContent = m.id;
  highlighted($("#d-text"), m.text || "", m.codes);
  const dl = $("#d-fields");
  dl.textContent = "";
  const hex2 = (n) => "0x" + Number(n).toString(16).padStart(2, "0");
  field(dl, "system_id", m.system_id);
  field(dl, "command", m.command);
  field(dl, "source_addr", m.from);
  field(dl, "source_addr_ton / npi", m.source_ton + " / " + m.source_npi);
  field(dl, "destination_addr", m.to);
  field(dl, "dest_addr_ton / npi", m.dest_ton + " / " + m.dest_npi);
  field(dl, "esm_class", hex2(m.esm_class));
  field(dl, "registered_delivery", hex2(m.registered_delivery));
  field(dl, "data_coding", hex2(m.data_coding) + " (" + (encodings[m.data_coding] || "other") + ")");
  field(dl, "segments", m.segments_received + " of " + m.segments + (m.complete ? "" : " (incomplete)"));
  field(dl, "segment ids", (m.segment_ids || []).join(", "));
  field(dl, "received_at", m.received_at);
  field(dl, "state", m.state + (m.held ? " (held: manual receipts)" : ""));
  field(dl, "codes", (m.codes || []).join(", "));
  field(dl, "data (hex)", m.data_hex);
  if (m.receipt) {
    field(dl, "receipt", m.receipt.stat + " err " + m.receipt.err);
    field(dl, "receipt sent_at", m.receipt.sent_at);
    field(dl, "receipt attempts / acked", m.receipt.attempts + " / " + m.receipt.acked + (m.receipt.delivered ? " (delivered)" : ""));
  }
  const pd = $("#d-pdus");
  pd.textContent = "";
  (m.pdus || []).forEach((h, i) => {
    const pre = document.createElement("pre");
    pre.setAttribute("aria-label", "PDU of segment " + (i + 1));
    pre.textContent = h ? hexLines(h) : "(segment missing)";
    pd.appendChild(pre);
  });
  if (!quiet) $("#detail-h").focus();
}

function closeDetail() {
  selected = null;
  $("#detail").hidden = true;
  for (const tr of document.querySelectorAll("#messages tbody tr.selected")) tr.classList.remove("selected");
  $("#messages-h").focus();
}

function dialog(openBtn, dlg, onOpen, onSubmit) {
  const form = dlg.querySelector("form");
  const err = dlg.querySelector(".error");
  $(openBtn).addEventListener("click", async () => {
    err.textContent = "";
    if (onOpen) await onOpen();
    dlg.showModal();
  });
  dlg.querySelector(".cancel").addEventListener("click", () => dlg.close());
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await onSubmit(form);
      dlg.close();
    } catch (e) { err.textContent = e.message; }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const params = new URLSearchParams(location.search);
  $("#ns").value = params.get("system_id") || "";
  $("#q").value = params.get("q") || "";
  $("#filters").addEventListener("submit", (ev) => ev.preventDefault());
  $("#q").addEventListener("input", render);
  $("#ns").addEventListener("change", () => {
    const p = new URLSearchParams(location.search);
    if (ns()) p.set("system_id", ns()); else p.delete("system_id");
    history.replaceState(null, "", p.toString() ? "?" + p : location.pathname);
    closeDetail();
    listen();
  });
  $("#clear").addEventListener("click", async () => {
    try {
      const r = await api("DELETE", "/api/messages" + query());
      say("Cleared " + r.deleted + " messages");
      closeDetail();
      load();
    } catch (e) { say(e.message); }
  });
  $("#receipt-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { stat: $("#r-stat").value };
    if ($("#r-err").value.trim()) body.err = $("#r-err").value.trim();
    if ($("#r-delay").value.trim()) body.delay = $("#r-delay").value.trim();
    try {
      const r = await api("POST", "/api/messages/" + encodeURIComponent(selected) + "/receipt", body);
      say("Receipt " + r.stat + " scheduled for " + selected);
    } catch (e) { say("Receipt refused: " + e.message); }
  });
  $("#d-delete").addEventListener("click", async () => {
    try {
      await api("DELETE", "/api/messages/" + encodeURIComponent(selected));
      byId.delete(selected);
      order = order.filter((id) => id !== selected);
      say("Deleted " + selected);
      closeDetail();
      render();
    } catch (e) { say(e.message); }
  });
  $("#d-close").addEventListener("click", closeDetail);
  document.addEventListener("keydown", (ev) => { if (ev.key === "Escape" && !$("#detail").hidden && !document.querySelector("dialog[open]")) closeDetail(); });
  dialog("#open-mo", $("#mo-dialog"), () => { if (ns()) $("#mo-sys").value = ns(); }, async (f) => {
    const body = { from: f.from.value, to: f.to.value, text: f.text.value, system_id: f.system_id.value };
    const r = await api("POST", "/api/mo", body);
    say("MO delivered in " + r.parts + " part(s)");
  });
  dialog("#open-faults", $("#faults-dialog"), async () => {
    const f = await api("GET", "/api/faults");
    $("#faults-json").value = JSON.stringify(f, null, 2);
  }, async () => {
    let body;
    try { body = JSON.parse($("#faults-json").value); } catch (e) { throw new Error("not JSON: " + e.message); }
    await api("PUT", "/api/faults", body);
    say("Faults saved");
  });
  listen();
});
