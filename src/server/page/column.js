// One output column (steered or unsteered): its text as it streams, and its
// speed measured here from the pieces' arrival (a piece is one token's text; a
// token whose bytes end inside a character arrives with the next one, so the
// count can be a little low; the usage chunk's exact count replaces it when the
// column is alone). data-state on the element says where it is: idle, waiting,
// streaming, done, stopped, error (what the browser test waits on).

const FINISH = { stop: "finished", length: "token limit", null: "ended" };

export class Column {
  constructor(element) {
    this.element = element;
    this.text = element.querySelector(".text");
    this.stats = element.querySelector(".stats");
    this.reset("idle");
  }

  reset(state, note = "") {
    this.pieces = 0;
    this.tokens = null; // exact count from usage, when known
    this.started = 0;
    this.first = 0;
    this.last = 0;
    this.finish = null;
    this.text.textContent = note;
    this.text.classList.toggle("note", Boolean(note));
    this.setState(state);
  }

  setState(state) {
    this.state = state;
    this.element.dataset.state = state;
    this.render();
  }

  start(now) {
    this.started = now;
    this.setState("waiting");
  }

  append(piece, now) {
    if (this.pieces === 0) {
      this.first = now;
      this.text.textContent = "";
      this.text.classList.remove("note");
      this.setState("streaming");
    }
    this.pieces += 1;
    this.last = now;
    this.text.textContent += piece;
    this.render();
  }

  end(reason, now) {
    this.finish = reason;
    if (this.pieces === 0) this.first = this.last = now;
    this.setState("done");
  }

  setTokens(count) {
    this.tokens = count;
    this.render();
  }

  stop() {
    if (this.state === "waiting" || this.state === "streaming") this.setState("stopped");
  }

  fail() {
    if (this.state !== "done") this.setState("error");
  }

  // "24 tokens · 31.2 tok/s · first after 0.41 s · finished"
  render() {
    const parts = [];
    const count = this.tokens ?? this.pieces;
    const counting = this.state !== "idle" && this.state !== "waiting" && !(this.state === "error" && count === 0);
    if (counting) parts.push(`${count} token${count === 1 ? "" : "s"}`);
    // Decoding speed: the tokens after the first over the time they took (the
    // first waits for the prompt, shown apart).
    if (count > 1 && this.last > this.first) {
      const rate = document.createElement("span");
      rate.className = "rate";
      rate.textContent = `${(((count - 1) * 1000) / (this.last - this.first)).toFixed(1)} tok/s`;
      parts.push(rate);
    }
    if (this.pieces > 0) parts.push(`first after ${((this.first - this.started) / 1000).toFixed(2)} s`);
    if (this.state === "waiting") parts.push("waiting…");
    if (this.state === "done") parts.push(FINISH[this.finish] || String(this.finish));
    if (this.state === "stopped") parts.push("stopped");
    if (this.state === "error") parts.push("failed");
    this.stats.replaceChildren(...parts.flatMap((part, i) => (i === 0 ? [part] : [" · ", part])));
  }
}
