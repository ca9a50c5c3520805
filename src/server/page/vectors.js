// The control-vector panel: the registry's vectors (GET /v1/vectors) to choose,
// each chosen one with its scale slider and its own block range (the entry's
// layer_range in control_vectors, which restricts that vector before the vectors
// are summed); upload of a .gguf (PUT /v1/vectors/{name}). A server without the
// registry (404) still takes vectors by name from its --vector-dir, so the panel
// then offers a name field instead of the list.

import { ApiError, getJson, request } from "./api.js";
import { el, slider } from "./controls.js";

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

export class VectorPanel {
  constructor(root, { onError, onChange }) {
    this.root = root;
    this.onError = onError;
    this.onChange = onChange;
    this.items = new Map(); // name -> {info, chosen, scale, range, element, ...}
    this.nLayer = 0;
    this.registry = false;
    this.list = root.querySelector("#vector-list");
    this.status = root.querySelector("#vector-status");
    this.byName = root.querySelector("#vector-by-name");
    this.upload = root.querySelector("#vector-upload");

    root.querySelector("#vector-add").addEventListener("click", () => this.addByName());
    root.querySelector("#vector-name").addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        this.addByName();
      }
    });
    root.querySelector("#vector-file").addEventListener("change", (event) => this.uploadFile(event.target));
  }

  // The last block a range can reach: the block sliders span blocks
  // 1..n_layer-1 (a control vector's block 0 is never applied, llama.cpp's rule).
  lastBlock() {
    return Math.max(1, this.nLayer - 1);
  }

  // The model's block count. A vector whose range covered every block keeps
  // covering every block of the new count; another is clamped into it.
  setLayers(nLayer) {
    const oldLast = this.lastBlock();
    this.nLayer = nLayer;
    const last = this.lastBlock();
    for (const item of this.items.values()) {
      const full = item.range[0] <= 1 && item.range[1] >= oldLast;
      item.first.setLimits(1, last);
      item.last.setLimits(1, last);
      if (full) {
        item.first.setValue(1);
        item.last.setValue(last);
      }
    }
  }

  // A vector's from-block or to-block slider moved; the other follows so that
  // from <= to.
  rangeMoved(item, which, value) {
    if (which === "first") {
      item.range[0] = value;
      if (item.range[1] < value) item.last.setValue(value);
    } else {
      item.range[1] = value;
      if (item.range[0] > value) item.first.setValue(value);
    }
    this.onChange();
  }

  async load() {
    let body;
    try {
      body = await getJson("/v1/vectors");
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return this.showNoRegistry();
      this.status.textContent = `vectors: ${error.message}`;
      return;
    }
    this.registry = true;
    this.byName.hidden = true;
    this.upload.hidden = false;
    const listed = new Set();
    for (const vector of body.data || []) {
      listed.add(vector.id);
      this.addItem(vector.id, vector);
    }
    for (const name of [...this.items.keys()]) {
      if (!listed.has(name)) this.removeItem(name);
    }
    this.status.textContent = this.items.size === 0 ? "No vectors on the server yet: upload a .gguf." : "";
  }

  showNoRegistry() {
    this.registry = false;
    this.status.textContent =
      "No vector registry on this server. Name a vector from its --vector-dir, or steer with ActAdd below.";
    this.byName.hidden = false;
    this.upload.hidden = true;
  }

  addByName() {
    const input = this.root.querySelector("#vector-name");
    const name = input.value.trim();
    if (!name) return;
    if (!NAME.test(name) || name.includes("..")) {
      this.onError(`'${name}' is not a vector name (letters, digits, '-', '_' and '.', not leading)`);
      return;
    }
    input.value = "";
    this.addItem(name, null, true);
  }

  describe(info) {
    if (!info) return "from --vector-dir";
    if (info.error) return info.error;
    const layers = info.layers || [];
    const blocks = layers.length === 0 ? "no blocks" :
      layers.length === 1 ? `block ${layers[0]}` : `blocks ${layers[0]}–${layers[layers.length - 1]}`;
    const norms = info.norms || [];
    const mean = norms.length ? norms.reduce((a, b) => a + b, 0) / norms.length : 0;
    return `${blocks} · mean norm ${mean.toFixed(2)}`;
  }

  addItem(name, info, chosen = false) {
    const existing = this.items.get(name);
    if (existing) {
      existing.info = info;
      existing.element.querySelector(".vector-info").textContent = this.describe(info);
      if (chosen) this.choose(existing, true);
      return;
    }
    const last = this.lastBlock();
    const item = { name, info, chosen: false, scale: 1, range: [1, last] };
    const check = el("input", { type: "checkbox", "data-vector": name, disabled: Boolean(info && info.error) });
    const scale = slider({ label: "scale", name: `scale-${name}`, min: -3, max: 3, step: 0.05, value: 1,
                           onChange: (v) => { item.scale = v; this.onChange(); } });
    item.first = slider({ label: "from block", name: `from-block-${name}`, min: 1, max: last, step: 1, value: 1,
                          onChange: (v) => this.rangeMoved(item, "first", v) });
    item.last = slider({ label: "to block", name: `to-block-${name}`, min: 1, max: last, step: 1, value: last,
                         onChange: (v) => this.rangeMoved(item, "last", v) });
    const controls = el("div", { class: "vector-controls" }, scale.element, item.first.element, item.last.element);
    controls.hidden = true;
    const head = el("label", { class: "vector-head" }, check, el("span", { class: "vector-name", text: name }),
                    el("span", { class: `vector-info${info && info.error ? " bad" : ""}`, text: this.describe(info) }));
    item.element = el("li", { class: "vector", "data-name": name }, head, controls);
    if (!this.registry) {
      const remove = el("button", { type: "button", class: "icon", title: `remove ${name}`, text: "×" });
      remove.addEventListener("click", () => this.removeItem(name));
      head.append(remove);
    }
    item.controls = controls;
    item.check = check;
    check.addEventListener("change", () => this.choose(item, check.checked));
    this.items.set(name, item);
    const after = [...this.list.children].find((li) => li.dataset.name > name);
    this.list.insertBefore(item.element, after || null);
    if (chosen) this.choose(item, true);
  }

  choose(item, chosen) {
    item.chosen = chosen;
    item.check.checked = chosen;
    item.controls.hidden = !chosen;
    item.element.classList.toggle("chosen", chosen);
    this.onChange();
  }

  removeItem(name) {
    const item = this.items.get(name);
    if (!item) return;
    item.element.remove();
    this.items.delete(name);
    this.onChange();
  }

  // The chosen vectors: [{name, scale, range}], range [first, last] or null
  // when it is every block (the request then leaves it out).
  chosen() {
    return [...this.items.values()].filter((item) => item.chosen)
      .map((item) => ({ name: item.name, scale: item.scale, range: this.blockRange(item) }));
  }

  blockRange(item) {
    if (this.nLayer === 0 || (item.range[0] <= 1 && item.range[1] >= this.lastBlock())) return null;
    return [item.range[0], item.range[1]];
  }

  async uploadFile(input) {
    const file = input.files && input.files[0];
    input.value = "";
    if (!file) return;
    const name = file.name.replace(/\.gguf$/i, "");
    if (!NAME.test(name) || name.includes("..")) {
      this.onError(`cannot name a vector '${name}': use letters, digits, '-', '_' and '.'`);
      return;
    }
    this.status.textContent = `uploading ${name}…`;
    try {
      const response = await request("PUT", `/v1/vectors/${encodeURIComponent(name)}`, {
        body: file, contentType: "application/octet-stream",
      });
      const vector = await response.json();
      await this.load();
      this.addItem(name, vector, true);
      this.status.textContent = `${response.status === 201 ? "added" : "replaced"} ${name}`;
    } catch (error) {
      this.status.textContent = "";
      this.onError(`upload of ${name}: ${error.message}`);
    }
  }
}
