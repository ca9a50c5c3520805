// The page's wiring: the model and the server's state, the API key, the panels,
// and one generation at a time streamed into the two columns.

import { ApiError, apiKey, getJson, request, setApiKey, sseData } from "./api.js";
import { ActAddPanel } from "./actadd.js";
import { Column } from "./column.js";
import { completionBody, steeringObject } from "./steering.js";
import { VectorPanel } from "./vectors.js";

const $ = (selector) => document.querySelector(selector);

const page = {
  model: null,
  nLayer: 0,
  controller: null, // the running generation's AbortController
};

const errorBox = $("#error");
function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
}
function clearError() {
  errorBox.hidden = true;
  errorBox.textContent = "";
}

const steered = new Column($("#col-steered"));
const plain = new Column($("#col-plain"));
const vectors = new VectorPanel($("#vectors"), { onError: showError, onChange: () => preview() });
const pairs = new ActAddPanel($("#actadd"), { onChange: () => preview() });

// ---- the API key: asked for only when the server answers 401 ----

const keyBox = $("#key-box");
const keyInput = $("#api-key");
keyInput.value = apiKey();
keyBox.hidden = !apiKey();
keyInput.addEventListener("change", () => {
  setApiKey(keyInput.value.trim());
  clearError();
  connect();
});

function needKey(error) {
  if (!(error instanceof ApiError && error.status === 401)) return false;
  keyBox.hidden = false;
  keyInput.focus();
  showError(`${error.message} (enter the server's key above; it is kept in this browser)`);
  return true;
}

// ---- the server: health, then the model and the vectors ----

const health = $("#health");
function setHealth(state, text) {
  health.dataset.state = state;
  health.textContent = text;
}

async function waitReady() {
  for (;;) {
    try {
      const response = await fetch("/health");
      const body = await response.json();
      if (response.ok) return setHealth("ok", "ready");
      setHealth("wait", body.status || "not ready");
    } catch {
      setHealth("down", "unreachable");
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function connect() {
  await waitReady();
  try {
    const models = await getJson("/v1/models");
    const model = models.data[0];
    page.model = model.id;
    $("#model").textContent = model.id;
    const meta = model.meta || {};
    page.nLayer = meta.n_layer || 0;
    if (meta.n_layer) $("#model-shape").textContent = `${meta.n_layer} blocks · width ${meta.n_embd} · context ${meta.n_ctx}`;
    vectors.setLayers(page.nLayer || 32);
    pairs.setLayers(page.nLayer || 32);
    clearError();
  } catch (error) {
    if (!needKey(error)) showError(error.message);
    return;
  }
  await vectors.load();
  preview();
}

// ---- the request ----

function numberField(selector, { integer = false } = {}) {
  const text = $(selector).value.trim();
  if (text === "") return null;
  const value = Number(text);
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new Error(`${$(selector).dataset.label} must be ${integer ? "a whole number" : "a number"}`);
  }
  return value;
}

function buildBody() {
  const steering = steeringObject({ vectors: vectors.chosen(), pairs: pairs.values() });
  return completionBody({
    model: page.model || undefined,
    chat: $("#mode-chat").checked,
    prompt: $("#prompt").value,
    seed: numberField("#seed", { integer: true }),
    temperature: numberField("#temperature") ?? 0.8,
    maxTokens: numberField("#max-tokens", { integer: true }) ?? 64,
    steering,
  });
}

// The JSON the next Generate sends, under "Request".
function preview() {
  try {
    $("#request-json").textContent = JSON.stringify(buildBody(), null, 2);
  } catch (error) {
    $("#request-json").textContent = error.message;
  }
}

// ---- a generation ----

const generateButton = $("#generate");
const stopButton = $("#stop");

function setRunning(running) {
  generateButton.disabled = running;
  stopButton.disabled = !running;
  document.body.classList.toggle("running", running);
}

async function generate(event) {
  event.preventDefault();
  if (page.controller) return;
  clearError();
  let body;
  try {
    body = buildBody();
    if (!body.prompt && !(body.messages && body.messages[0].content)) throw new Error("write a prompt first");
  } catch (error) {
    showError(error.message);
    return;
  }
  const compare = Boolean(body.compare);
  const now = performance.now();
  steered.reset("idle", compare ? "" : "No steering chosen: pick a vector or add an ActAdd pair.");
  plain.reset("idle");
  if (compare) steered.start(now);
  plain.start(now);
  // Choice 0 is the steered completion and 1 the unsteered one with compare;
  // without it the single choice 0 is unsteered.
  const columns = compare ? [steered, plain] : [plain];
  $("#usage").textContent = "";
  $("#seed-used").textContent = "";

  const controller = new AbortController();
  page.controller = controller;
  setRunning(true);
  const path = body.messages ? "/v1/chat/completions" : "/v1/completions";
  try {
    const response = await request("POST", path, {
      body: JSON.stringify(body), contentType: "application/json", signal: controller.signal,
    });
    for await (const data of sseData(response)) {
      if (data === "[DONE]") break;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new ApiError(chunk.error.code || 500, chunk.error.message);
      if (chunk.seed !== undefined && !$("#seed-used").textContent) $("#seed-used").textContent = `seed ${chunk.seed}`;
      const at = performance.now();
      for (const choice of chunk.choices || []) {
        const column = columns[choice.index];
        if (!column) continue;
        const piece = choice.delta ? choice.delta.content : choice.text;
        if (piece) column.append(piece, at);
        if (choice.finish_reason !== null && choice.finish_reason !== undefined) column.end(choice.finish_reason, at);
      }
      if (chunk.usage) {
        const u = chunk.usage;
        $("#usage").textContent = `usage: ${u.prompt_tokens} prompt + ${u.completion_tokens} completion tokens` +
          (compare ? " (both columns)" : "");
        if (!compare) plain.setTokens(u.completion_tokens);
      }
    }
    // A stream cut before its end (the server stopped) leaves columns unfinished.
    for (const column of columns) {
      if (column.state !== "done") column.end(null, performance.now());
    }
  } catch (error) {
    if (error.name === "AbortError") {
      for (const column of columns) column.stop();
    } else {
      for (const column of columns) column.fail();
      if (!needKey(error)) showError(error.message);
    }
  } finally {
    page.controller = null;
    setRunning(false);
  }
}

// Aborting the fetch closes the connection; the server notices and frees both slots.
stopButton.addEventListener("click", () => {
  if (page.controller) page.controller.abort();
});
$("#prompt-form").addEventListener("submit", generate);
$("#prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) generate(event);
});
for (const input of document.querySelectorAll("#prompt-form input, #prompt")) {
  input.addEventListener("input", preview);
}

connect();
