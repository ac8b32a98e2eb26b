// styleforge's page, the batch section: follow one batch (its counts, progress and every item's status),
// download its results zip, cancel its queued items. Uses app.js's helpers ($, api, readJson, POLL_MS).
"use strict";

const BATCH_ITEMS_SHOWN = 200; // one page of items; the rest are counted below the table
const batchState = { id: null, poll: null };

document.addEventListener("DOMContentLoaded", () => {
  $("batch-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("batch-input").value.trim();
    if (id) followBatch(id);
  });
  $("batch-zip").addEventListener("click", () => downloadZip(batchState.id));
  $("batch-cancel").addEventListener("click", cancelBatch);
});

// Polled (GET /v1/batches/{id}) every POLL_MS while any item is queued or running, with or without a key.
function followBatch(batchId) {
  clearTimeout(batchState.poll);
  batchState.id = batchId;
  $("batch-input").value = batchId;
  $("batch-id").textContent = batchId;
  $("batch-items").tBodies[0].replaceChildren();
  $("batch-view").hidden = false;
  showBatchStatus("Loading…");
  $("batch").scrollIntoView({ block: "nearest" });
  pollBatch(batchId);
}

async function pollBatch(batchId) {
  if (batchState.id !== batchId) return;
  try {
    const response = await api(`/v1/batches/${encodeURIComponent(batchId)}?limit=${BATCH_ITEMS_SHOWN}`);
    const batch = await readJson(response);
    if (batchState.id !== batchId) return;
    if (!response.ok) return showBatchError(response, batch);
    showBatch(batch);
    if (batch.status === "queued" || batch.status === "running") {
      batchState.poll = setTimeout(() => pollBatch(batchId), POLL_MS);
    } else {
      renderRecent(); // its tile's counts and thumbnail
    }
  } catch (err) {
    showBatchStatus(`Could not reach the API (${err.message}); retrying.`, true);
    batchState.poll = setTimeout(() => pollBatch(batchId), POLL_MS);
  }
}

function showBatch(batch) {
  const percent = Math.floor(100 * batch.progress.fraction);
  $("batch-progress").value = percent;
  $("batch-progress-label").textContent = `${percent} %`;
  const counts = Object.entries(batch.counts).filter(([, count]) => count > 0);
  const parts = counts.map(([status, count]) => `${count} ${status}`);
  const eta = batch.eta_s && (batch.status === "running" || batch.status === "queued") ? ` · about ${formatEta(batch.eta_s)} left` : "";
  showBatchStatus(`${batch.status} · ${batch.items_total} items: ${parts.join(", ")}${eta}`);
  $("batch-status").dataset.status = batch.status;
  $("batch-cancel").hidden = !batch.counts.queued;
  $("batch-zip").hidden = !batch.counts.succeeded;
  $("batch-items").tBodies[0].replaceChildren(...batch.items.map(itemRow));
  const more = batch.items_total - batch.items.length;
  $("batch-more").hidden = more <= 0;
  $("batch-more").textContent = `and ${more} more items (the zip holds every finished one)`;
}

function itemRow(item) {
  const row = document.createElement("tr");
  row.dataset.jobId = item.job_id;
  row.dataset.status = item.status;
  const watch = document.createElement("button");
  watch.type = "button";
  watch.className = "link";
  watch.textContent = item.path;
  watch.title = `follow job ${item.job_id} in Progress`;
  watch.addEventListener("click", () => followItem(item.job_id));
  row.insertCell().append(watch);
  row.insertCell().textContent = item.error ? `${item.status}: ${item.error}` : item.status;
  row.insertCell().textContent = `${item.step} / ${item.total_steps}`;
  row.insertCell().append(item.result ? resultLink(item.result) : "");
  return row;
}

// The result URL is presigned as an attachment: following it saves the file under the item's name.
function resultLink(result) {
  const link = document.createElement("a");
  link.href = result.url;
  link.download = "";
  link.title = `download ${result.path}`;
  const thumb = document.createElement("img");
  thumb.src = result.url;
  thumb.alt = result.path;
  link.append(thumb);
  return link;
}

async function followItem(jobId) {
  const response = await api(`/v1/jobs/${jobId}`);
  const job = await readJson(response);
  if (!response.ok) return showBatchError(response, job);
  follow(job);
  $("live").scrollIntoView({ block: "nearest" });
}

// Cancels the items still queued; running ones finish, finished ones stay downloadable.
async function cancelBatch() {
  const batchId = batchState.id;
  $("batch-cancel").disabled = true;
  try {
    const response = await api(`/v1/batches/${encodeURIComponent(batchId)}/cancel`, { method: "POST" });
    if (!response.ok) return showBatchError(response, await readJson(response));
    clearTimeout(batchState.poll);
    pollBatch(batchId);
  } finally {
    $("batch-cancel").disabled = false;
  }
}

function showBatchStatus(text, bad = false) {
  $("batch-status").textContent = text;
  $("batch-status").classList.toggle("bad", bad);
}

function showBatchError(response, body) {
  const error = body && body.error;
  showBatchStatus(error ? error.message : `The API answered ${response.status} ${response.statusText}.`, true);
}

function formatEta(seconds) {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
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
