// styleforge's page: submit a job, follow it over server-sent events, list the recent jobs and batches.
"use strict";

const RECENT_MAX = 12;
const TERMINAL = new Set(["succeeded", "failed", "canceled"]);
const WEIGHTS = ["style_weight", "content_weight"]; // log-scale sliders

const KEY_STORE = "styleforge.apiKey"; // localStorage: the API key this browser sends (required mode)
const POLL_MS = 1000; // with a key: EventSource cannot send an Authorization header, so the page polls

const $ = (id) => document.getElementById(id);
const state = { presets: {}, weights: {}, source: null, jobId: null, poll: null };

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
  for (const name of ["steps", "max_dim", ...WEIGHTS]) $(name).addEventListener("input", () => slid(name));
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
    const response = await api("/v1/jobs", { method: "POST", body: formData() });
    const job = await readJson(response);
    if (!response.ok) return showApiError(response, job);
    follow(job);
    renderRecent();
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
  clearTimeout(state.poll);
  state.source = null;
  state.jobId = job.id;
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
  showLosses(job.losses);
  showSnapshot(job);
  state.poll = setTimeout(() => poll(jobId), POLL_MS);
}

function onEvent(source, event) {
  if (state.source !== source) return;
  showProgress(event.step, event.total_steps, event.status);
  showLosses(event.losses);
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
  // The batch's results as one zip, under their original relative paths.
  item.querySelector("button").addEventListener("click", () => downloadZip(batch.id));
  return item;
}

// A plain link cannot send the key: with one, fetch the zip and hand the browser its bytes.
async function downloadZip(batchId) {
  const url = `/v1/batches/${batchId}/results.zip`;
  if (!apiKey()) {
    window.location.href = url;
    return;
  }
  const response = await api(url);
  if (!response.ok) return showApiError(response, await readJson(response));
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = `batch-${batchId}.zip`;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
}
