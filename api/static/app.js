// styleforge's page: submit a job, follow it over server-sent events, list this browser's recent jobs.
"use strict";

const RECENT_KEY = "styleforge.recentJobs";
const RECENT_MAX = 12;
const TERMINAL = new Set(["succeeded", "failed", "canceled"]);
const SNAPSHOT_REFRESH_MS = 2000; // the job JSON is re-read at most this often for a new intermediate image
const WEIGHTS = ["style_weight", "content_weight"]; // log-scale sliders

const $ = (id) => document.getElementById(id);
const state = { presets: {}, weights: {}, source: null, jobId: null, snapshotAt: 0 };

document.addEventListener("DOMContentLoaded", () => {
  loadPresets();
  for (const field of ["content", "style"]) $(field).addEventListener("change", () => preview(field));
  for (const name of ["steps", "max_dim", ...WEIGHTS]) $(name).addEventListener("input", () => slid(name));
  $("preset").addEventListener("change", () => applyPreset($("preset").value));
  $("job-form").addEventListener("submit", submit);
  renderRecent();
});

// ---- form ---------------------------------------------------------------------------------------------

async function loadPresets() {
  try {
    const body = await (await fetch("/web/presets")).json();
    state.presets = body.presets;
    $("preset").value = "balanced"; // normalised losses: one set of weights works at any size
  } catch (err) {
    showError(`Could not load the presets (${err.message}); the API's defaults apply.`);
  }
  applyPreset($("preset").value);
}

function applyPreset(name) {
  const preset = state.presets[name] || {};
  for (const weight of WEIGHTS) {
    if (preset[weight] === undefined) continue;
    state.weights[weight] = preset[weight];
    $(weight).value = Math.log10(Math.max(preset[weight], 1e-4)).toFixed(1);
  }
  for (const name of ["steps", "max_dim", ...WEIGHTS]) showValue(name);
}

function slid(name) {
  if (WEIGHTS.includes(name)) state.weights[name] = Number((10 ** Number($(name).value)).toPrecision(2));
  showValue(name);
}

function showValue(name) {
  const value = WEIGHTS.includes(name) ? state.weights[name] : $(name).value;
  $(`${name}-out`).textContent = value === undefined ? "" : String(value);
}

function preview(field) {
  const file = $(field).files[0];
  const img = $(`${field}-preview`);
  img.hidden = !file;
  if (file) img.src = URL.createObjectURL(file);
}

function formData() {
  const data = new FormData();
  for (const field of ["content", "style"]) {
    if ($(field).files[0]) data.append(field, $(field).files[0]);
  }
  data.append("preset", $("preset").value);
  data.append("steps", $("steps").value);
  data.append("max_dim", $("max_dim").value);
  for (const weight of WEIGHTS) {
    if (state.weights[weight] !== undefined) data.append(weight, String(state.weights[weight]));
  }
  if (Number($("save_every").value) > 0) data.append("save_every", $("save_every").value);
  return data;
}

async function submit(event) {
  event.preventDefault();
  clearError();
  $("submit").disabled = true;
  try {
    const response = await fetch("/v1/jobs", { method: "POST", body: formData() });
    const job = await readJson(response);
    if (!response.ok) return showApiError(response, job);
    remember(job.id);
    follow(job);
  } catch (err) {
    showError(`Could not reach the API: ${err.message}`);
  } finally {
    $("submit").disabled = false;
  }
}

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null; // e.g. a proxy's HTML error page
  }
}

// ---- errors -------------------------------------------------------------------------------------------

function showApiError(response, body) {
  const error = body && body.error;
  if (!error) return showError(`The API answered ${response.status} ${response.statusText}.`);
  const where = error.field ? `${error.field}: ` : "";
  showError(`${where}${error.message}`);
  const input = error.field && $(error.field);
  if (input) {
    input.classList.add("invalid");
    input.focus();
  }
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
  for (const input of document.querySelectorAll(".invalid")) input.classList.remove("invalid");
}

// ---- following a job ----------------------------------------------------------------------------------

function follow(job) {
  if (state.source) state.source.close();
  state.jobId = job.id;
  state.snapshotAt = 0;
  resetView(job);
  if (TERMINAL.has(job.status)) return finish(job.id);
  // EventSource reconnects by itself after a drop, sending Last-Event-ID: the API resumes exactly there.
  const source = new EventSource(`/v1/jobs/${job.id}/events`);
  state.source = source;
  source.addEventListener("status", (message) => onEvent(source, JSON.parse(message.data)));
  source.addEventListener("progress", (message) => onEvent(source, JSON.parse(message.data)));
  source.addEventListener("error", () => {
    // CLOSED: the API said there is nothing more (204) or refused the stream; read the job once instead.
    if (source.readyState === EventSource.CLOSED && state.source === source) finish(job.id);
  });
}

function onEvent(source, event) {
  if (state.source !== source) return;
  showProgress(event.step, event.total_steps, event.status);
  showLosses(event.losses);
  if (event.type === "progress") refreshSnapshot(event);
  if (TERMINAL.has(event.status)) {
    source.close();
    finish(event.job_id || state.jobId);
  }
}

function resetView(job) {
  $("job-id").textContent = job.id;
  $("result").hidden = true;
  $("snapshot").hidden = true;
  $("losses").hidden = true;
  showProgress(job.progress.step, job.progress.total_steps, job.status);
}

function showProgress(step, total, status) {
  const percent = status === "succeeded" ? 100 : Math.floor((100 * step) / Math.max(total, 1));
  $("progress").value = percent;
  $("progress-label").textContent = `${percent} %`;
  $("status").textContent = `${status} · step ${step} of ${total}`;
}

function showLosses(losses) {
  const names = Object.keys(losses || {});
  if (!names.length) return;
  const rows = names.map((name) => {
    const row = document.createElement("tr");
    for (const text of [name, formatLoss(losses[name])]) row.insertCell().textContent = text;
    return row;
  });
  $("losses").tBodies[0].replaceChildren(...rows);
  $("losses").hidden = false;
}

function formatLoss(value) {
  return typeof value === "number" ? value.toPrecision(4) : String(value);
}

async function refreshSnapshot(event) {
  const now = Date.now();
  if (now - state.snapshotAt < SNAPSHOT_REFRESH_MS) return;
  state.snapshotAt = now;
  const job = await readJson(await fetch(`/v1/jobs/${event.job_id || state.jobId}`));
  if (job && job.id === state.jobId) showSnapshot(job);
}

function showSnapshot(job) {
  const steps = Array.isArray(job.steps) ? job.steps.filter((item) => item && item.url) : [];
  if (!steps.length) return;
  const newest = steps[steps.length - 1];
  $("snapshot-img").src = newest.url;
  $("snapshot-caption").textContent = `step ${newest.step}`;
  $("snapshot").hidden = false;
}

async function finish(jobId) {
  const response = await fetch(`/v1/jobs/${jobId}`);
  const job = await readJson(response);
  if (!response.ok) return showApiError(response, job);
  if (job.id !== state.jobId) return;
  showProgress(job.progress.step, job.progress.total_steps, job.status);
  showLosses(job.losses);
  showSnapshot(job);
  if (job.status === "failed") $("status").textContent = `failed: ${job.error}`;
  if (job.result && job.result.url) {
    $("result-img").src = job.result.url;
    $("download").href = job.result.url;
    $("download").textContent = `Download (${job.result.width}×${job.result.height})`;
    $("result").hidden = false;
    $("snapshot").hidden = true;
  }
  renderRecent();
}

// ---- recent jobs --------------------------------------------------------------------------------------

function recentIds() {
  try {
    const ids = JSON.parse(localStorage.getItem(RECENT_KEY) || "[]");
    return Array.isArray(ids) ? ids : [];
  } catch {
    return [];
  }
}

function remember(jobId) {
  const ids = [jobId, ...recentIds().filter((id) => id !== jobId)].slice(0, RECENT_MAX);
  localStorage.setItem(RECENT_KEY, JSON.stringify(ids));
  renderRecent();
}

async function renderRecent() {
  const ids = recentIds();
  const jobs = await Promise.all(ids.map(fetchJob));
  const known = jobs.filter(Boolean);
  // Jobs the API no longer knows (expired records) leave the list.
  localStorage.setItem(RECENT_KEY, JSON.stringify(known.map((job) => job.id)));
  $("recent-empty").hidden = known.length > 0;
  $("recent-list").replaceChildren(...known.map(recentItem));
}

async function fetchJob(jobId) {
  try {
    const response = await fetch(`/v1/jobs/${jobId}`);
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}

function recentItem(job) {
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.title = `job ${job.id}`;
  if (job.result && job.result.url) {
    const thumb = document.createElement("img");
    thumb.src = job.result.url;
    thumb.alt = `result of job ${job.id}`;
    button.append(thumb);
  } else {
    const placeholder = document.createElement("span");
    placeholder.className = "placeholder";
    placeholder.textContent = job.status;
    button.append(placeholder);
  }
  const caption = document.createElement("span");
  caption.className = "caption";
  caption.textContent = `${job.status} · ${job.params.preset} · ${job.params.steps} steps`;
  button.append(caption);
  button.addEventListener("click", () => follow(job));
  item.append(button);
  return item;
}
