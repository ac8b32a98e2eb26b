// styleforge's page, the House styles section: list the caller's saved styles (POST/GET/DELETE /v1/styles),
// save the chosen style image(s) and blend weights under a name, delete one, and pick one for the next jobs: the
// job form then sends `style_id` (state.styleId, read by app.js's formData) in place of style files.
// Uses app.js's helpers ($, api, readJson, state, updateSubmit, showBlend, blendWeights).
"use strict";

const STYLES_LISTED = 100; // the API's most per listing
const stylesState = { styles: [] };
const EMPTY_NOTE = "None yet: choose style image(s) above, name them here and save; then pick the style for any job.";

document.addEventListener("DOMContentLoaded", () => {
  $("style-save").addEventListener("submit", saveStyle);
  $("style-unuse").addEventListener("click", () => useStyle(null));
  $("authorization").addEventListener("change", () => {
    clearStylesError();
    renderStyles(); // another key: another tenant's styles
  });
  renderStyles();
});

async function renderStyles() {
  stylesState.styles = await listStyles();
  $("styles-empty").hidden = stylesState.styles.length > 0;
  $("styles-list").replaceChildren(...stylesState.styles.map(styleItem));
  const inUse = stylesState.styles.find((style) => style.id === state.styleId);
  useStyle(inUse || null); // a style deleted elsewhere, or another tenant's, is no longer offered
}

// The caller's styles, or none when they cannot be listed: a missing key is said in the empty note, any
// other refusal beside the section.
async function listStyles() {
  $("styles-empty").textContent = EMPTY_NOTE;
  try {
    const response = await api(`/v1/styles?limit=${STYLES_LISTED}`);
    const body = await readJson(response);
    if (response.ok) return body.styles;
    if (response.status === 401) $("styles-empty").textContent = "Enter your API key above to see its house styles.";
    else showStylesError(response, body);
  } catch (err) {
    showStylesError(null, null, `Could not reach the API: ${err.message}`);
  }
  return [];
}

function styleItem(style) {
  const item = document.createElement("li");
  item.dataset.id = style.id;
  item.classList.toggle("selected", style.id === state.styleId);
  const thumbs = document.createElement("div");
  thumbs.className = "thumbs";
  for (const image of style.images) {
    const thumb = document.createElement("img");
    thumb.src = image.url;
    thumb.alt = `${style.name}: ${image.width}×${image.height}`;
    thumb.title = thumb.alt;
    thumbs.append(thumb);
  }
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = style.name;
  const about = document.createElement("span");
  about.className = "caption";
  about.textContent = describeStyle(style);
  item.append(thumbs, name, about, styleButtons(style));
  return item;
}

function describeStyle(style) {
  const count = style.images.length;
  const parts = [count === 1 ? "1 image" : `${count} images`];
  if (count > 1) parts.push(`weights ${style.style_blend_weights.map((w) => Number(w.toFixed(3))).join(" / ")}`);
  if (style.style_scale !== 1) parts.push(`scale ${style.style_scale}`);
  return parts.join(" · ");
}

function styleButtons(style) {
  const buttons = document.createElement("div");
  buttons.className = "actions";
  const use = document.createElement("button");
  use.type = "button";
  use.className = "secondary use";
  use.textContent = style.id === state.styleId ? "In use" : "Use";
  use.disabled = style.id === state.styleId;
  use.title = `Style the next jobs with “${style.name}” in place of an uploaded style image`;
  use.addEventListener("click", () => useStyle(style));
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "secondary delete";
  remove.textContent = "Delete";
  remove.title = "Jobs already made with it keep their results";
  remove.addEventListener("click", () => deleteStyle(style));
  buttons.append(use, remove);
  return buttons;
}

// A saved style in place of the style file input (hidden and disabled meanwhile), or back to uploading.
function useStyle(style) {
  state.styleId = style ? style.id : null;
  $("style").disabled = Boolean(style);
  $("style-upload").hidden = Boolean(style);
  $("style-saved").hidden = !style;
  $("style-save-button").disabled = Boolean(style); // a new style is saved from an uploaded image
  $("style-save-hint").hidden = !style;
  showBlend();
  if (style) {
    $("style-saved-name").textContent = style.name;
    $("style-saved-preview").src = style.images[0].url;
    $("style-saved-about").textContent = describeStyle(style);
  }
  for (const item of $("styles-list").children) {
    const selected = item.dataset.id === state.styleId;
    item.classList.toggle("selected", selected);
    item.querySelector(".use").textContent = selected ? "In use" : "Use";
    item.querySelector(".use").disabled = selected;
  }
  updateSubmit();
}

// The style image(s) chosen in the job form, with their blend weights, under the typed name; the API names a
// missing or bad field.
async function saveStyle(event) {
  event.preventDefault();
  clearStylesError();
  const data = new FormData();
  data.append("name", $("style-name").value);
  for (const file of $("style").files) data.append("style", file);
  if (blendWeights()) data.append("style_blend_weights", blendWeights());
  $("style-save-button").disabled = true;
  try {
    const response = await api("/v1/styles", { method: "POST", body: data });
    const body = await readJson(response);
    if (!response.ok) return showStylesError(response, body);
    $("style-name").value = "";
    await renderStyles();
  } catch (err) {
    showStylesError(null, null, `Could not reach the API: ${err.message}`);
  } finally {
    $("style-save-button").disabled = Boolean(state.styleId);
  }
}

async function deleteStyle(style) {
  if (!window.confirm(`Delete the house style “${style.name}”? Jobs already made with it keep their results.`)) {
    return;
  }
  clearStylesError();
  const response = await api(`/v1/styles/${encodeURIComponent(style.id)}`, { method: "DELETE" });
  if (!response.ok && response.status !== 404) {
    return showStylesError(response, await readJson(response)); // 404: gone already, as wanted
  }
  await renderStyles();
}

// The API's error beside the section, naming its field; the input it names (name, style) is outlined.
function showStylesError(response, body, text = "") {
  const error = body && body.error;
  const where = error && error.field ? `${error.field}: ` : "";
  const fallback = response ? `The API answered ${response.status} ${response.statusText}.` : "";
  $("styles-error").textContent = error ? `${where}${error.message}` : text || fallback;
  $("styles-error").hidden = false;
  const fields = { name: "style-name", style: "style", style_blend_weights: "style_blend_weights" };
  const input = error && $(fields[error.field]);
  if (input) input.classList.add("invalid");
}

function clearStylesError() {
  $("styles-error").hidden = true;
  $("style-name").classList.remove("invalid");
  $("style_blend_weights").classList.remove("invalid");
  if (!state.badFiles.has("style")) $("style").classList.remove("invalid");
}
