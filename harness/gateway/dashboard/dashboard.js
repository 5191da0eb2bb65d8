// The operator's view of the gateway: live state over server-sent events, audited controls.
// Plain JS, no build step. Data is rendered with textContent only, never as markup.
"use strict";

const TOKEN_KEY = "chaos-admin-token";
const STALE_AFTER_MS = 3500;
const RUN_STALE_AFTER_S = 5;
const RECONNECT_MS = 5000;

const $ = (id) => document.getElementById(id);
let source = null;
let reconnectTimer = null;
let lastState = null;
let lastUpdate = 0;
const rows = new Map(); // "group\u0000model" -> <tr>
const histories = new Map(); // "group\u0000model" -> {time, rate: [], p99: [], "error-rate": []}
const SPARK_POINTS = 60; // one a second: the last minute
const groups = new Map(); // group -> <article>

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function setConnection(state, text) {
  const pill = $("connection");
  pill.dataset.state = state;
  pill.textContent = text;
  document.body.dataset.connection = state;
}

function showResult(kind, text, status) {
  const box = $("action-result");
  box.hidden = false;
  box.className = kind;
  box.dataset.kind = kind;
  box.dataset.status = status === undefined ? "" : String(status);
  box.setAttribute("role", kind === "error" ? "alert" : "status");
  box.textContent = text;
}

// ---- formatting -------------------------------------------------------------------------

function pct(value, digits = 0) {
  return value === null || value === undefined ? "-" : `${(value * 100).toFixed(digits)}%`;
}

function ms(seconds) {
  return seconds === null || seconds === undefined ? "-" : `${(seconds * 1000).toFixed(1)} ms`;
}

function num(value) {
  return value === null || value === undefined ? "-" : String(Math.round(value * 1000) / 1000);
}

function clock(wallSeconds) {
  return new Date(wallSeconds * 1000).toLocaleTimeString([], { hour12: false });
}

// ---- rendering --------------------------------------------------------------------------

function groupElement(name, idle) {
  let article = groups.get(name);
  if (!article) {
    article = $("group-template").content.firstElementChild.cloneNode(true);
    article.dataset.group = name;
    article.querySelector(".group-name").textContent = name;
    groups.set(name, article);
  }
  const parent = idle ? $("idle-list") : $("groups");
  if (article.parentElement !== parent) parent.appendChild(article);
  return article;
}

function rowElement(article, group, model) {
  const key = `${group}\u0000${model}`;
  let row = rows.get(key);
  if (!row) {
    row = $("row-template").content.firstElementChild.cloneNode(true);
    row.dataset.group = group;
    row.dataset.model = model;
    row.querySelector('[data-field="model"]').textContent = model;
    for (const button of row.querySelectorAll("button[data-action]")) {
      button.dataset.model = model;
      button.dataset.group = group;
      button.addEventListener("click", () => askModelAction(button.dataset.action, group, model));
    }
    article.querySelector("tbody").appendChild(row);
    rows.set(key, row);
  }
  return row;
}

function field(row, name, text) {
  const cell = row.querySelector(`[data-field="${name}"]`);
  if (cell.textContent !== text) cell.textContent = text;
  return cell;
}

// A sparkline per figure: one point a second (pushes come faster while things change), the
// last minute, scaled to its own maximum (error rate: to 100 %); a missing figure is a gap.
function remember(key, m, wallSeconds) {
  let history = histories.get(key);
  if (!history) {
    history = { time: -Infinity, rate: [], p99: [], "error-rate": [] };
    histories.set(key, history);
  }
  if (wallSeconds - history.time < 0.9) return history;
  history.time = wallSeconds;
  const figures = { rate: m.rate || 0, p99: m.p99, "error-rate": m.calls ? m.error_rate : null };
  for (const [name, value] of Object.entries(figures)) {
    const series = history[name];
    series.push(value === undefined ? null : value);
    if (series.length > SPARK_POINTS) series.shift();
  }
  return history;
}

function sparkPath(series, top) {
  const step = 60 / (SPARK_POINTS - 1);
  const offset = SPARK_POINTS - series.length;
  let path = "";
  let drawing = false;
  series.forEach((value, i) => {
    if (value === null) {
      drawing = false;
      return;
    }
    const x = ((offset + i) * step).toFixed(1);
    const y = (15 - (top > 0 ? Math.min(value / top, 1) : 0) * 14).toFixed(1);
    path += `${drawing ? "L" : "M"}${x} ${y} `;
    drawing = true;
  });
  return path.trim();
}

function renderSparks(row, history) {
  const format = { rate: (v) => `${v.toFixed(1)}/s`, p99: ms, "error-rate": (v) => pct(v, 1) };
  for (const svg of row.querySelectorAll("svg[data-spark]")) {
    const name = svg.dataset.spark;
    const series = history[name];
    const known = series.filter((v) => v !== null);
    const top = name === "error-rate" ? 1 : Math.max(0, ...known);
    svg.querySelector("path").setAttribute("d", sparkPath(series, top));
    svg.dataset.points = String(known.length);
    svg.dataset.max = known.length ? String(Math.max(...known)) : "";
    const span = known.length ? `${format[name](Math.min(...known))} to ${format[name](Math.max(...known))}` : "no data";
    svg.querySelector("title").textContent = `${name}, last ${series.length} s: ${span}`;
  }
}

function renderModel(row, m, controllable) {
  row.dataset.health = m.health;
  row.dataset.circuit = m.circuit === null ? "none" : m.circuit;
  row.dataset.drained = String(Boolean(m.drained));
  const badge = field(row, "health", m.health);
  badge.dataset.health = m.health;
  field(row, "circuit", m.circuit === null ? "-" : m.circuit.replace("_", "-"));
  field(row, "share", pct(m.share));
  row.querySelector(".fill").style.width = `${Math.round((m.share || 0) * 100)}%`;
  field(row, "rate", `${(m.rate || 0).toFixed(1)}/s`);
  field(row, "weight", num(m.weight));
  field(row, "p50", ms(m.p50));
  field(row, "p99", ms(m.p99));
  field(row, "error-rate", pct(m.error_rate, 1));
  const restoring = m.restoration_share !== null && m.restoration_share < 1;
  field(row, "restoration", restoring ? `step ${pct(m.restoration_share)}` : m.restoration_share === null ? "-" : "full");
  field(row, "drained", m.drained ? "drained" : "no");
  for (const button of row.querySelectorAll("button[data-action]")) button.disabled = !controllable;
}

function renderGroups(state) {
  const controllable = state.mode === "resilient";
  const seen = new Set();
  const idleNames = [];
  for (const [name, models] of Object.entries(state.groups)) {
    const idle = models.every((m) => !m.calls);
    if (idle) idleNames.push(name);
    const article = groupElement(name, idle);
    for (const m of models) {
      const row = rowElement(article, name, m.model);
      renderModel(row, m, controllable);
      renderSparks(row, remember(`${name}\u0000${m.model}`, m, state.time));
      seen.add(`${name}\u0000${m.model}`);
    }
  }
  for (const [key, row] of rows) {
    if (!seen.has(key)) {
      row.remove();
      rows.delete(key);
      histories.delete(key);
    }
  }
  $("groups-empty").hidden = Object.keys(state.groups).length > 0;
  $("groups-empty").textContent = "No models.";
  $("idle-groups").hidden = idleNames.length === 0;
  $("idle-summary").textContent = `${idleNames.length} group(s) without traffic yet: ${idleNames.join(", ")}`;
}

function renderDegraded(degraded) {
  const state = $("degraded-state");
  state.dataset.enabled = String(degraded.enabled);
  state.textContent = degraded.enabled ? "ON" : "off";
  const toggle = $("degraded-toggle");
  toggle.disabled = false;
  toggle.dataset.enabled = String(degraded.enabled);
  toggle.textContent = degraded.enabled ? "Turn degraded mode off" : "Turn degraded mode on";
  $("degraded-detail").textContent = degraded.enabled
    ? `since ${clock(degraded.since)} by ${degraded.who}: ${degraded.reason}`
    : "";
}

function renderRun(run) {
  const panel = $("run");
  panel.hidden = !run;
  if (!run) return;
  panel.dataset.phase = run.phase;
  panel.dataset.stale = String(run.age > RUN_STALE_AFTER_S);
  $("run-scenario").textContent = run.scenario;
  $("run-variant").textContent = run.variant || "-";
  $("run-phase").textContent = run.phase;
  $("run-progress").value = run.duration > 0 ? Math.min(run.elapsed / run.duration, 1) : 0;
  $("run-elapsed").textContent = `${run.elapsed.toFixed(1)} s of ${run.duration.toFixed(1)} s`;
  $("run-age").textContent = run.age > RUN_STALE_AFTER_S ? `(last report ${Math.round(run.age)} s ago)` : "";
  const list = $("run-faults");
  list.replaceChildren();
  if (!run.faults.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = "no active faults";
    list.appendChild(li);
  }
  for (const f of run.faults) {
    const li = document.createElement("li");
    li.dataset.model = f.model;
    li.dataset.fault = String(f.fault);
    li.textContent = `${f.model}: ${f.kind} (fault #${f.fault})`;
    list.appendChild(li);
  }
}

function auditDetail(r) {
  const parts = [];
  if (r.why) parts.push(r.why);
  if (r.from !== undefined && r.to !== undefined) parts.push(`${r.from} -> ${r.to}`);
  if (r.reason) parts.push(r.reason);
  if (r.details && Object.keys(r.details).length) parts.push(JSON.stringify(r.details));
  return parts.join(" | ");
}

function renderAudit(records) {
  const body = $("audit-rows");
  const fresh = document.createDocumentFragment();
  for (const r of [...records].reverse()) {
    const tr = document.createElement("tr");
    tr.dataset.kind = r.kind;
    if (r.action) tr.dataset.action = r.action;
    if (r.model) tr.dataset.model = r.model;
    const what = r.action ? `${r.action}` : r.kind;
    for (const text of [clock(r.time), r.group || "(gateway)", r.model || "-", what, r.who || "", auditDetail(r)]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    fresh.appendChild(tr);
  }
  body.replaceChildren(fresh);
}

function render(state) {
  lastState = state;
  lastUpdate = Date.now();
  $("mode").textContent = state.mode;
  $("updated").textContent = clock(state.time);
  $("refused").textContent = String(state.refused_admin_requests);
  renderDegraded(state.degraded);
  renderRun(state.run);
  renderGroups(state);
  renderAudit(state.audit);
}

// ---- connection -------------------------------------------------------------------------

function authHeaders() {
  return { Authorization: `Bearer ${token()}`, "Content-Type": "application/json" };
}

function disconnect() {
  if (source) source.close();
  source = null;
  clearTimeout(reconnectTimer);
  reconnectTimer = null;
}

async function connect() {
  disconnect();
  if (!token()) {
    setConnection("no-token", "enter the admin token");
    return;
  }
  setConnection("connecting", "connecting...");
  let response;
  try {
    response = await fetch("/admin/state", { headers: authHeaders(), cache: "no-store" });
  } catch (err) {
    setConnection("down", "gateway unreachable; retrying");
    reconnectTimer = setTimeout(connect, RECONNECT_MS);
    return;
  }
  if (response.status === 401) {
    setConnection("refused", "token refused (401)");
    return;
  }
  if (!response.ok) {
    setConnection("down", `state failed (${response.status}); retrying`);
    reconnectTimer = setTimeout(connect, RECONNECT_MS);
    return;
  }
  render(await response.json());
  source = new EventSource(`/admin/events?token=${encodeURIComponent(token())}`);
  source.addEventListener("state", (event) => {
    render(JSON.parse(event.data));
    setConnection("live", "live");
  });
  source.onerror = () => {
    if (source && source.readyState === EventSource.CLOSED) {
      // The stream was refused or the gateway went away: check again later, once.
      disconnect();
      setConnection("down", "disconnected; retrying");
      reconnectTimer = setTimeout(connect, RECONNECT_MS);
    } else {
      setConnection("reconnecting", "reconnecting...");
    }
  };
}

// ---- actions ----------------------------------------------------------------------------

let pending = null; // {title, text, path, body(weight?), weight: bool}

function askModelAction(action, group, model) {
  const current = lastState && (lastState.groups[group] || []).find((m) => m.model === model);
  const words = {
    isolate: "Isolate: force the circuit open, so the model gets no traffic at all.",
    drain: "Drain: send the model no new requests; requests in flight finish.",
    restore: "Restore: undo isolate and drain; traffic comes back in steps.",
    weight: "Set the base routing weight (0 takes the model out of rotation).",
  };
  openDialog({
    title: `${action} ${model}`,
    text: `${words[action]} Applies in every group that has ${model}.`,
    path: `/admin/models/${encodeURIComponent(model)}/${action}`,
    weight: action === "weight",
    currentWeight: current ? current.weight : 1,
    body: {},
  });
}

function askDegraded() {
  const enabled = !(lastState && lastState.degraded.enabled);
  openDialog({
    title: enabled ? "Turn degraded mode ON" : "Turn degraded mode off",
    text: enabled
      ? "Every chat request will get the degraded answer, without calling any model."
      : "Chat requests will be routed to the models again.",
    path: "/admin/degraded",
    weight: false,
    body: { enabled },
  });
}

function openDialog(request) {
  pending = request;
  $("confirm-title").textContent = request.title;
  $("confirm-text").textContent = request.text;
  $("confirm-weight-label").hidden = !request.weight;
  $("confirm-weight").value = request.weight ? String(request.currentWeight ?? 1) : "";
  $("confirm-reason").value = "";
  $("confirm-error").hidden = true;
  $("confirm-dialog").dataset.path = request.path;
  $("confirm-dialog").showModal();
  $("confirm-reason").focus();
}

function dialogError(text) {
  $("confirm-error").textContent = text;
  $("confirm-error").hidden = false;
}

async function confirmAction(event) {
  event.preventDefault();
  if (!pending) return;
  const reason = $("confirm-reason").value.trim();
  if (!reason) {
    dialogError("A reason is required.");
    return;
  }
  const body = { ...pending.body, reason, who: $("confirm-who").value.trim() || "admin" };
  if (pending.weight) {
    const weight = Number($("confirm-weight").value);
    if ($("confirm-weight").value === "" || !Number.isFinite(weight) || weight < 0) {
      dialogError("The weight must be a number >= 0.");
      return;
    }
    body.weight = weight;
  }
  const request = pending;
  pending = null;
  $("confirm-dialog").close();
  await send(request, body);
}

async function send(request, body) {
  let response;
  try {
    response = await fetch(request.path, { method: "POST", headers: authHeaders(), body: JSON.stringify(body) });
  } catch (err) {
    showResult("error", `Not sent: the gateway is unreachable (${err.message}). Nothing changed.`);
    return;
  }
  let payload = {};
  try {
    payload = await response.json();
  } catch (err) {
    payload = {};
  }
  if (response.status === 401) {
    showResult("error", "Refused (401): missing or invalid admin token. Nothing changed.", 401);
    return;
  }
  if (!response.ok) {
    const message = payload.error ? payload.error.message : response.statusText;
    showResult("error", `Refused (${response.status}): ${message}. Nothing changed.`, response.status);
    return;
  }
  const where = payload.applied ? ` in ${payload.applied.map((a) => a.group).join(", ")}` : "";
  showResult("ok", `Done: ${request.title}${where}. Recorded in the audit trail.`, response.status);
}

// ---- wiring -----------------------------------------------------------------------------

function init() {
  $("token-input").value = token();
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
    connect();
  });
  $("token-forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $("token-input").value = "";
    disconnect();
    setConnection("no-token", "enter the admin token");
  });
  $("degraded-toggle").addEventListener("click", askDegraded);
  $("confirm-form").addEventListener("submit", confirmAction);
  $("confirm-cancel").addEventListener("click", () => {
    pending = null;
    $("confirm-dialog").close();
  });
  setInterval(() => {
    const stale = lastUpdate > 0 && Date.now() - lastUpdate > STALE_AFTER_MS;
    document.body.dataset.stale = String(stale);
  }, 1000);
  connect();
}

document.addEventListener("DOMContentLoaded", init);
