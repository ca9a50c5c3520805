// The request the page sends, built from the controls' values: the library's
// steering object (docs/steering.md, "The steering object") and the completion
// body around it. Pure functions, no DOM.

// vectors: [{name, scale, range}] (the chosen ones; range [first, last] blocks
// of that vector, or null for all); pairs: [{positive, negative, layer, coef}].
// Null when nothing steers. Throws an Error with a message for the user on an
// incomplete pair.
export function steeringObject({ vectors, pairs }) {
  const steering = {};
  if (vectors.length > 0) {
    steering.control_vectors = vectors.map((v) => {
      const entry = { name: v.name, scale: v.scale };
      if (v.range) entry.layer_range = v.range;
      return entry;
    });
  }
  const actadd = [];
  pairs.forEach((pair, i) => {
    const positive = pair.positive.trim() ? pair.positive : "";
    const negative = pair.negative.trim() ? pair.negative : "";
    if (!positive && !negative) return; // an empty row is not a pair yet
    if (!positive || !negative) throw new Error(`ActAdd pair ${i + 1} needs both a positive and a negative text`);
    actadd.push({ positive, negative, layer: pair.layer, coef: pair.coef });
  });
  if (actadd.length > 0) steering.actadd = actadd;
  return Object.keys(steering).length > 0 ? steering : null;
}

// The body of one streamed request. With steering it asks for both choices at
// once ("compare": choice 0 steered, 1 unsteered, the same seed); without, for
// the unsteered one alone.
export function completionBody({ model, chat, prompt, seed, temperature, maxTokens, steering }) {
  const body = { model, stream: true, stream_options: { include_usage: true } };
  if (chat) body.messages = [{ role: "user", content: prompt }];
  else body.prompt = prompt;
  if (seed !== null) body.seed = seed;
  body.temperature = temperature;
  body.max_tokens = maxTokens;
  if (steering) {
    body.steering = steering;
    body.compare = true;
  }
  return body;
}
