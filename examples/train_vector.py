"""Train a control vector from contrasting prompts, save it, load it, do arithmetic.

repeng users: ControlVector.train is repeng's ControlVector.train with method
"pca-diff" (the default) or "mean" (CAA); the file is llama.cpp's control-vector
GGUF, and direction.L is read from and added to blocks.L.hook_resid_post.
"""
import argparse
from pathlib import Path

import numpy as np
import tiller

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", default="smollm2-135m-instruct")
parser.add_argument("--out", default="examples-out", help="folder for the .gguf files (default: examples-out)")
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

model = tiller.Model(args.model)
# repeng's recipe: one persona sentence, then the start of many different answers.
# The pair differs only in the persona word; the vector is read at the last token.
suffixes = ["Today I", "When I woke up this morning,", "My friend asked me how I was and I said",
            "Looking out of the window, I", "The news this week made me", "At work, my boss",
            "Thinking about the future, I", "The weather outside is", "When I look in the mirror I",
            "My weekend plans are", "Dinner last night was", "I walked into the room and"]
template = "Act as if you are extremely {}. {}"
happy = [template.format("happy", s) for s in suffixes]
sad = [template.format("sad", s) for s in suffixes]
neutral = [template.format("ordinary", s) for s in suffixes]

vector = tiller.ControlVector.train(model, positive=happy, negative=sad)  # every block but 0
print(vector)
print("block  norm    mean gap  explained (share of the pairs' variance on the direction)")
for stats in vector.train_stats[::4]:
    block = stats["block"]
    print(f"{block:5d}  {vector.norms()[block]:6.2f}  {stats['mean_gap']:8.2f}  {stats['explained']:.2f}")
assert vector.blocks == list(range(1, model.config["n_layer"]))
assert vector.n_embd == model.config["n_embd"]

# Save as llama.cpp's file (llama-cli --control-vector reads it) and read it back.
path = out / "happy-sad.gguf"
vector.save(path)
loaded = tiller.ControlVector.load(path)
print(f"saved {path} ({path.stat().st_size} bytes), loaded {loaded}")
assert all(np.array_equal(vector.directions[b], loaded.directions[b]) for b in vector.blocks)

# Arithmetic. With method="mean" a vector is a mean difference, which is linear:
# (happy - neutral) - (sad - neutral) is happy - sad, up to float rounding.
mean_direct = tiller.ControlVector.train(model, happy, sad, method="mean")
happy_vs_neutral = tiller.ControlVector.train(model, happy, neutral, method="mean")
sad_vs_neutral = tiller.ControlVector.train(model, sad, neutral, method="mean")
composed = happy_vs_neutral - sad_vs_neutral
cosines = {b: float(composed.directions[b] @ mean_direct.directions[b] /
                    (np.linalg.norm(composed.directions[b]) * np.linalg.norm(mean_direct.directions[b])))
           for b in composed.blocks}
print(f"(happy - neutral) - (sad - neutral) against happy - sad: cosine >= {min(cosines.values()):.5f}, "
      f"norm ratio at block 15 {composed.norms()[15] / mean_direct.norms()[15]:.4f}")
assert min(cosines.values()) > 0.99
half = 0.5 * vector
assert all(abs(half.norms()[b] - 0.5 * vector.norms()[b]) < 1e-4 * vector.norms()[b] for b in vector.blocks)
(-vector).save(out / "sad-happy.gguf")  # the negation steers the other way
middle_only = tiller.ControlVector.from_directions({b: vector.directions[b] for b in range(8, 16)},
                                                     model_hint=vector.model_hint)
print("a slice of blocks:", middle_only)

# Does the file steer? Log-odds of " happy" against " sad" as the next token.
prompt = "Honestly, right now I feel"
good, bad = (model.tokenize(w, add_special=False)[0] for w in (" happy", " sad"))
odds = {}
for scale in (-0.2, 0.0, 0.2):
    steering = tiller.Steering(control_vectors=[(str(path), scale)]) if scale else None
    last = model.logits(prompt, steering=steering)[-1]
    odds[scale] = float(last[good] - last[bad])
    print(f"scale {scale:+.1f}: logit(' happy') - logit(' sad') = {odds[scale]:+.2f}")
assert odds[-0.2] < odds[0.0] < odds[0.2], "the vector does not steer towards happy"
print("OK")
