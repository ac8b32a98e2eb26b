// styleforge's page: submit a job, follow it over server-sent events (or cancel it), list the recent jobs and
// batches. batch.js follows one batch.
"use strict";

const RECENT_MAX = 12;
const TERMINAL = new Set(["succeeded", "failed", "canceled"]);
const WEIGHTS = ["style_weight", "content_weight"]; // log-scale sliders
const EXACT = ["steps", "max_dim"]; // a slider and a number input each, kept in sync; the number is sent
const STEPS_SLIDER_MAX = 2000; // the slider's reach; the number input goes to the API's limit

const KEY_STORE = "styleforge.apiKey"; // localStorage: the API key this browser sends (required mode)
const POLL_MS = 1000; // with a key: EventSource cannot send an Authorization header, so the page polls

const $ = (id) => document.getElementById(id);
const state = {
  presets: {},
  weights: {},
  source: null,
  jobId: null,
  poll: null,
  busy: false, // a submission is on its way
  badFiles: new Set(), // file inputs holding a file the browser cannot decode as an image
  initialLosses: {}, // the followed job's losses at step 0 (the table's "start" column)
  stopping: false, // the followed job was asked to stop
};

// The stored key as a Bearer on every /v1 call; an open API gets none.
function apiKey() {
  return (localStorage.getItem(KEY_STORE) || "").trim();
}

function api(url, options = {}) {
  const key = apiKey();
  const headers = { ...(options.headers || {}), ...(key ? { Authorization: `Bearer ${key}` } : {}) };
  return fetch(url, { ...options, headers });
}

function saveKey() {
  const key = $("authorization").value.trim();
  if (key) localStorage.setItem(KEY_STORE, key);
  else localStorage.removeItem(KEY_STORE);
  renderRecent();
}

document.addEventListener("DOMContentLoaded", () => {
  loadPresets();
  for (const field of ["content", "style"]) $(field).addEventListener("change", () => preview(field));
  for (const name of WEIGHTS) $(name).addEventListener("input", () => slid(name));
  for (const name of EXACT) {
    $(`${name}-range`).addEventListener("input", () => syncFromSlider(name));
    $(name).addEventListener("input", () => syncFromNumber(name));
  }
  $("cancel").addEventListener("click", cancelJob);
  $("preset").addEventListener("change", () => applyPreset($("preset").value));
  $("job-form").addEventListener("submit", submit);
  $("authorization").value = apiKey();
  $("authorization").addEventListener("change", saveKey);
  renderRecent();
});

// ---- form ---------------------------------------------------------------------------------------------

async function loadPresets() {
  try {
    const body = await (await fetch("/web/presets")).json();
    state.presets = body.presets;
    applyLimits(body.limits || {});
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
  for (const name of WEIGHTS) showValue(name);
}

// The API's ranges (GET /web/presets), so an input never offers what the API would refuse.
function applyLimits(limits) {
  for (const [name, range] of Object.entries(limits)) {
    const input = $(name);
    if (!input) continue;
    input.min = range.min;
    input.max = range.max;
    const slider = $(`${name}-range`);
    if (slider) {
      slider.min = range.min;
      slider.max = name === "steps" ? Math.min(range.max, STEPS_SLIDER_MAX) : range.max;
    }
  }
  for (const name of EXACT) syncFromNumber(name);
}

function slid(name) {
  state.weights[name] = Number((10 ** Number($(name).value)).toPrecision(2));
  showValue(name);
}

function showValue(name) {
  const value = state.weights[name];
  $(`${name}-out`).textContent = value === undefined ? "" : String(value);
}

function syncFromSlider(name) {
  $(name).value = $(`${name}-range`).value;
  checkRange(name);
}

// An exact value past the slider's reach leaves the slider at its end.
function syncFromNumber(name) {
  const value = $(name).valueAsNumber;
  if (Number.isFinite(value)) $(`${name}-range`).value = String(value);
  checkRange(name);
}

function checkRange(name) {
  const input = $(name);
  input.classList.toggle("invalid", !input.checkValidity());
  input.title = input.checkValidity() ? "" : `a whole number from ${input.min} to ${input.max}`;
}

// The preview shows only once the browser has decoded the file: a file that is no image is named in a warning
// beside its input, and the job cannot be submitted until it is replaced.
function preview(field) {
  const file = $(field).files[0];
  const img = $(`${field}-preview`);
  img.hidden = true;
  markFile(field, "");
  if (!file) return;
  img.onload = () => {
    if ($(field).files[0] === file) img.hidden = false;
  };
  img.onerror = () => {
    if ($(field).files[0] !== file) return;
    markFile(field, `“${file.name}” is not an image this browser can read: choose a PNG, JPEG or WebP file.`);
  };
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(file);
}

function markFile(field, warning) {
  $(`${field}-warning`).textContent = warning;
  $(`${field}-warning`).hidden = !warning;
  $(field).classList.toggle("invalid", Boolean(warning));
  if (warning) state.badFiles.add(field);
  else state.badFiles.delete(field);
  updateSubmit();
}

function updateSubmit() {
  $("submit").disabled = state.busy || state.badFiles.size > 0;
  $("submit").title = state.badFiles.size ? "Replace the file that is not an image first" : "";
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
  if (state.badFiles.size) return;
  clearError();
  state.busy = true;
  updateSubmit();
  try {
    const response = await api("/v1/jobs", { method: "POST", body: formData() });
    const job = await readJson(response);
    if (!response.ok) return showApiError(response, job);
    follow(job);
    renderRecent();
  } catch (err) {
    showError(`Could not reach the API: ${err.message}`);
  } finally {
    state.busy = false;
    updateSubmit();
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
  for (const input of document.querySelectorAll("#job-form .invalid")) {
    if (!state.badFiles.has(input.id)) input.classList.remove("invalid");
  }
}

// ---- following a job ----------------------------------------------------------------------------------

function follow(job) {
  if (state.source) state.source.close();
  clearTimeout(state.poll);
  state.source = null;
  state.jobId = job.id;
  state.initialLosses = job.initial_losses || {};
  state.stopping = Boolean(job.cancel_requested);
  resetView(job);
  if (TERMINAL.has(job.status)) return finish(job.id);
  if (apiKey()) return poll(job.id);
  // EventSource reconnects by itself after a drop, sending Last-Event-ID: the API resumes exactly there.
  const source = new EventSource(`/v1/jobs/${job.id}/events`);
  state.source = source;
  source.addEventListener("status", (message) => onEvent(source, JSON.parse(message.data)));
  source.addEventListener("progress", (message) => onEvent(source, JSON.parse(message.data)));
  source.addEventListener("snapshot", (message) => onEvent(source, JSON.parse(message.data)));
  source.addEventListener("error", () => {
    // CLOSED: the API said there is nothing more (204) or refused the stream; read the job once instead.
    if (source.readyState === EventSource.CLOSED && state.source === source) finish(job.id);
  });
}

// With a key: read the job every POLL_MS until it ends (the snapshot, progress and losses it carries).
async function poll(jobId) {
  if (state.jobId !== jobId) return;
  const response = await api(`/v1/jobs/${jobId}`);
  const job = await readJson(response);
  if (!response.ok) return showApiError(response, job);
  if (state.jobId !== jobId) return;
  if (TERMINAL.has(job.status)) return finish(jobId);
  showProgress(job.progress.step, job.progress.total_steps, job.status);
  state.initialLosses = job.initial_losses || state.initialLosses;
  showLosses(job.losses, job.progress.step);
  showSnapshot(job);
  state.poll = setTimeout(() => poll(jobId), POLL_MS);
}

function onEvent(source, event) {
  if (state.source !== source) return;
  showProgress(event.step, event.total_steps, event.status);
  if (event.type === "progress" && event.step === 0) state.initialLosses = event.losses || {};
  showLosses(event.losses, event.step);
  if (event.type === "snapshot" && event.image_url) showSnapshotImage(event.image_url, event.step);
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
  const stopping = state.stopping && !TERMINAL.has(status) ? " · stopping after this step" : "";
  $("status").textContent = `${status} · step ${step} of ${total}${stopping}`;
  $("cancel").hidden = TERMINAL.has(status);
  $("cancel").disabled = state.stopping;
}

// Every report (progress, status) carries the losses of its own step: the table shows the newest, saying
// which step that is, beside the losses the job started from.
function showLosses(losses, step) {
  const names = Object.keys(losses || {});
  if (!names.length) return;
  const rows = names.map((name) => {
    const row = document.createElement("tr");
    row.dataset.loss = name;
    const start = state.initialLosses[name];
    for (const text of [name, start === undefined ? "" : formatLoss(start), formatLoss(losses[name])]) {
      row.insertCell().textContent = text;
    }
    row.cells[2].dataset.value = String(losses[name]);
    return row;
  });
  $("losses-step").textContent = `losses at step ${step}`;
  $("losses-step").dataset.step = String(step);
  $("losses").tBodies[0].replaceChildren(...rows);
  $("losses").hidden = false;
}

function formatLoss(value) {
  return typeof value === "number" ? value.toPrecision(4) : String(value);
}

function showSnapshot(job) {
  const steps = Array.isArray(job.steps) ? job.steps.filter((item) => item && item.url) : [];
  if (!steps.length) return;
  const newest = steps[steps.length - 1];
  showSnapshotImage(newest.url, newest.step);
}

function showSnapshotImage(url, step) {
  $("snapshot-img").src = url;
  $("snapshot-caption").textContent = `step ${step}`;
  $("snapshot").hidden = false;
}

async function finish(jobId) {
  const response = await api(`/v1/jobs/${jobId}`);
  const job = await readJson(response);
  if (!response.ok) return showApiError(response, job);
  if (job.id !== state.jobId) return;
  state.initialLosses = job.initial_losses || state.initialLosses;
  showProgress(job.progress.step, job.progress.total_steps, job.status);
  showLosses(job.losses, job.progress.step);
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

// Queued: canceled at once (200). Running: asked to stop after its current step (202); the stream (or the
// poll) then brings the canceled status. Finished meanwhile: 409, and the page shows how it ended.
async function cancelJob() {
  const jobId = state.jobId;
  if (!jobId) return;
  clearError();
  $("cancel").disabled = true;
  const response = await api(`/v1/jobs/${jobId}/cancel`, { method: "POST" });
  const job = await readJson(response);
  if (state.jobId !== jobId) return;
  if (response.status === 202) {
    state.stopping = true;
    return showProgress(job.progress.step, job.progress.total_steps, job.status);
  }
  if (!response.ok && response.status !== 409) {
    $("cancel").disabled = false;
    return showApiError(response, job);
  }
  finish(jobId); // canceled, or (409) already ended: either way, show how it ended
}

// ---- recent jobs and batches (listed by the API, newest first) --------------------------------------------

async function renderRecent() {
  const [jobs, batches] = await Promise.all([fetchList("/v1/jobs", "jobs"), fetchList("/v1/batches", "batches")]);
  $("recent-empty").hidden = jobs.length > 0;
  $("recent-list").replaceChildren(...jobs.map(recentJob));
  $("batches-empty").hidden = batches.length > 0;
  $("batch-list").replaceChildren(...batches.map(recentBatch));
}

async function fetchList(url, field) {
  try {
    const response = await api(`${url}?limit=${RECENT_MAX}`);
    const body = response.ok ? await response.json() : null;
    return body && Array.isArray(body[field]) ? body[field] : [];
  } catch {
    return []; // the page still works for submitting; the lists fill in on the next refresh
  }
}

function tile(title, imageUrl, placeholderText, captionText) {
  const button = document.createElement("button");
  button.type = "button";
  button.title = title;
  if (imageUrl) {
    const thumb = document.createElement("img");
    thumb.src = imageUrl;
    thumb.alt = title;
    button.append(thumb);
  } else {
    const placeholder = document.createElement("span");
    placeholder.className = "placeholder";
    placeholder.textContent = placeholderText;
    button.append(placeholder);
  }
  const caption = document.createElement("span");
  caption.className = "caption";
  caption.textContent = captionText;
  button.append(caption);
  const item = document.createElement("li");
  item.dataset.id = title.split(" ").pop();
  item.append(button);
  return item;
}

function recentJob(job) {
  const url = job.result && job.result.url;
  const item = tile(`job ${job.id}`, url, job.status, `${job.status} · ${job.params.preset} · ${job.params.steps} steps`);
  item.querySelector("button").addEventListener("click", () => follow(job));
  return item;
}

function recentBatch(batch) {
  const done = batch.counts.succeeded + batch.counts.failed + batch.counts.canceled;
  const caption = `${batch.status} · ${done}/${batch.items_total} done · ${batch.params.preset}`;
  const item = tile(`batch ${batch.id}`, batch.thumbnail, batch.status, caption);
  item.querySelector("button").addEventListener("click", () => followBatch(batch.id));
  return item;
}
