"""Read the residual stream (run_with_cache) and edit it (run_with_hooks).

TransformerLens users: the hook names are the same (blocks.L.hook_resid_post, ...),
the cache is a dict of float32 NumPy arrays [n_tokens, n_embd] (no batch axis),
and a hook is fn(activation, positions) that edits the activation in place.
"""
import argparse
from pathlib import Path

import numpy as np
import tiller

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", default="smollm2-135m-instruct")
parser.add_argument("--out", default="examples-out", help="folder for the cache .npz (default: examples-out)")
args = parser.parse_args()

model = tiller.Model(args.model)
n_layer, n_embd = model.config["n_layer"], model.config["n_embd"]
print(model)

# 1. run_with_cache: every block's output ("blocks.*.hook_X" expands to all blocks).
texts = ["I love spending the afternoon with my friends.",
         "I adore spending the evening with my family.",
         "The invoice lists three items and a tax total."]
caches = []
for text in texts:
    logits, cache = model.run_with_cache(text, names="blocks.*.hook_resid_post")
    n_tokens = len(model.tokenize(text))
    assert logits.shape == (n_tokens, model.config["n_vocab"])
    assert len(cache) == n_layer and all(a.shape == (n_tokens, n_embd) for a in cache.values())
    assert np.array_equal(logits, model.logits(text))  # caching does not change the pass
    caches.append(cache)

def last(cache, block):  # the residual at the last token, after block `block`
    return cache[f"blocks.{block}.hook_resid_post"][-1].astype(np.float64)

def cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

print("\nblock | norm of resid_post at the last token (texts 0, 1, 2) | cos(0,1)  cos(0,2)")
for block in range(n_layer):
    norms = [np.linalg.norm(last(c, block)) for c in caches]
    similar = cosine(last(caches[0], block), last(caches[1], block))
    unrelated = cosine(last(caches[0], block), last(caches[2], block))
    print(f"{block:5d} | {norms[0]:9.1f} {norms[1]:9.1f} {norms[2]:9.1f}"
          f"                         | {similar:7.3f}  {unrelated:7.3f}")
    assert -1.0 <= unrelated <= 1.0 and norms[0] > 0
Path(args.out).mkdir(parents=True, exist_ok=True)  # np.load(...)["blocks.5.hook_resid_post"]:
np.savez(Path(args.out) / "resid_post_text0.npz", **caches[0])

# 2. run_with_hooks: project a direction out of one block's output at every position.
block = 6
_, love = model.run_with_cache("I love you", names=f"blocks.{block}.hook_resid_post")
_, hate = model.run_with_cache("I hate you", names=f"blocks.{block}.hook_resid_post")
direction = love[f"blocks.{block}.hook_resid_post"][-1] - hate[f"blocks.{block}.hook_resid_post"][-1]
unit = (direction / np.linalg.norm(direction.astype(np.float64))).astype(np.float32)

def ablate(activation, positions):
    # activation: a writable float32 view [rows, n_embd] of this chunk (no copy; only
    # valid during the call). Editing it in place is what the pass continues from.
    # Dot products in float64, the update in float32: the engine's own arithmetic.
    along = (activation.astype(np.float64) @ unit.astype(np.float64)).astype(np.float32)
    activation -= along[:, None] * unit[None, :]  # returning None keeps the edited view

prompt = "Honestly, the way you treat me makes me feel"
clean = model.logits(prompt)[-1]
ablated = model.run_with_hooks(prompt, [(f"blocks.{block}.hook_resid_post", ablate)])[-1]
# The engine's own ablation (the steering JSON's "ablate") does the same at the same point.
engine = model.logits(prompt, steering=tiller.Steering(
    ablate=[(tiller.ControlVector.from_directions({block: direction}), 1.0)]))[-1]

print(f"\nablating the 'I love you' - 'I hate you' direction at blocks.{block}.hook_resid_post:")
for word in [" loved", " happy", " special", " hated", " sad", " angry", " worthless"]:
    token = model.tokenize(word, add_special=False)[0]
    print(f"  logit of {model.detokenize([token])!r:14} {clean[token]:7.2f} -> {ablated[token]:7.2f}")
for name, row in (("clean:  ", clean), ("ablated:", ablated)):
    print("  top tokens,", name, [model.detokenize([int(t)]) for t in np.argsort(row)[::-1][:6]])

def kl(p, q):  # KL(p || q) of two next-token distributions given as logits
    lp, lq = (x.astype(np.float64) - np.logaddexp.reduce(x.astype(np.float64)) for x in (p, q))
    return float(np.exp(lp) @ (lp - lq))

# Activations are quantized to 8 bits before each matrix product: other rounding in the
# hook (np.outer in float32) would move logits by up to ~1 (docs/python.md, "Numerics").
effect, gap = kl(clean, ablated), float(np.abs(ablated - engine).max())
print(f"  KL(clean || ablated) = {effect:.4f}; hook vs engine ablation: largest logit difference {gap:.2g}")
assert effect > 0.01, "ablation changed nothing"
assert gap <= 1e-3, "the hook and the engine's ablation disagree"
print("OK")
