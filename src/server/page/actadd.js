// The ActAdd panel: prompt pairs (positive, negative) with the block whose input
// they steer and their coefficient. The server runs each pair through the model.

import { el, slider } from "./controls.js";

export class ActAddPanel {
  constructor(root, { onChange }) {
    this.list = root.querySelector("#pairs");
    this.onChange = onChange;
    this.pairs = [];
    this.maxBlock = 0;
    root.querySelector("#pair-add").addEventListener("click", () => this.add());
  }

  setLayers(nLayer) {
    this.maxBlock = Math.max(0, nLayer - 1);
    for (const pair of this.pairs) pair.blockSlider.setLimits(0, this.maxBlock);
  }

  add(positive = "", negative = "") {
    // Block 6 of a 30-block model is where the ActAdd paper's examples work; a
    // fifth of the way in is the same place on other depths.
    const block = Math.min(this.maxBlock, Math.max(0, Math.round((this.maxBlock + 1) / 5)));
    const pair = { positive, negative, layer: block, coef: 4 };
    const index = this.pairs.length;
    const pos = el("input", { type: "text", value: positive, placeholder: "positive, e.g. Love", "data-control": "positive",
                              "aria-label": "positive text" });
    const neg = el("input", { type: "text", value: negative, placeholder: "negative, e.g. Hate", "data-control": "negative",
                              "aria-label": "negative text" });
    pos.addEventListener("input", () => { pair.positive = pos.value; this.onChange(); });
    neg.addEventListener("input", () => { pair.negative = neg.value; this.onChange(); });
    pair.blockSlider = slider({ label: "block", name: "pair-block", min: 0, max: this.maxBlock, step: 1, value: block,
                                onChange: (v) => { pair.layer = v; this.onChange(); } });
    const coef = slider({ label: "coefficient", name: "pair-coef", min: -20, max: 20, step: 0.5, value: 4,
                          onChange: (v) => { pair.coef = v; this.onChange(); } });
    const remove = el("button", { type: "button", class: "icon", title: "remove this pair", text: "×" });
    pair.element = el("div", { class: "pair", "data-pair": index },
                      el("div", { class: "pair-texts" }, pos, el("span", { class: "minus", text: "−" }), neg, remove),
                      pair.blockSlider.element, coef.element);
    remove.addEventListener("click", () => {
      pair.element.remove();
      this.pairs = this.pairs.filter((p) => p !== pair);
      this.onChange();
    });
    this.pairs.push(pair);
    this.list.append(pair.element);
    pos.focus();
    this.onChange();
  }

  values() {
    return this.pairs.map(({ positive, negative, layer, coef }) => ({ positive, negative, layer, coef }));
  }
}
