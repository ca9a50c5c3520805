// Small DOM builders the panels share: an element with attributes and children,
// and a slider paired with a number box (drag for a feel, type for an exact value).

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

let nextId = 0;

// A labelled range input and a number box kept in step; onChange(value) on
// every move. `name` becomes data-control on both inputs (what tests look for).
export function slider({ label, name, min, max, step, value, onChange }) {
  const id = `slider-${++nextId}`;
  const range = el("input", { type: "range", id, min, max, step, value, "data-control": name, "aria-label": label });
  const number = el("input", {
    type: "number", min, max, step, value, class: "slider-number", "data-control": `${name}-number`,
    "aria-label": `${label} value`,
  });
  const set = (v, from) => {
    if (from !== range) range.value = v;
    if (from !== number) number.value = v;
    onChange(Number(v));
  };
  range.addEventListener("input", () => set(range.value, range));
  number.addEventListener("input", () => {
    if (number.value !== "" && !Number.isNaN(Number(number.value))) set(number.value, number);
  });
  const element = el("div", { class: "slider" }, el("label", { for: id, text: label }), range, number);
  return {
    element,
    setLimits(newMin, newMax) {
      for (const input of [range, number]) {
        input.min = newMin;
        input.max = newMax;
      }
      const clamped = Math.min(Math.max(Number(range.value), newMin), newMax);
      set(String(clamped), null);
    },
    setValue(v) {
      set(String(v), null);
    },
  };
}
