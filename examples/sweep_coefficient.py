"""Sweep an ActAdd coefficient and measure what it does, without sampling.

For each coefficient: the mean log-probability per token of on-topic and off-topic
continuations scored teacher-forced (the ActAdd paper's likelihood measure; the gain
on topic should rise, the off-topic change is damage), and the KL divergence of the
next-token distribution after each prompt from the unsteered one. Prints a table and
plots it (matplotlib, Agg) to OUT/sweep_coefficient.png.
"""
import argparse
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import tiller

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", default="smollm2-135m-instruct")
parser.add_argument("--out", default="examples-out", help="folder for the plot (default: examples-out)")
parser.add_argument("--layer", type=int, default=6)
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
model = tiller.Model(args.model)

coefs = [0, 1, 2, 3, 4, 6, 8, 12]
prompts = ["I hate you because", "When I think about my neighbour, I feel", "Yesterday my brother told me that"]
on_topic = [" I love you so much and you mean the world to me.",
            " you are kind, warm and wonderful, and I adore you."]
off_topic = [" the train leaves at seven and arrives in the city at nine.",
             " the report has three sections and a short appendix."]

def log_softmax(logits):
    logits = logits.astype(np.float64)
    return logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)

def mean_logprob(prompt, continuation, steering):
    # Token ids in, so the boundary is exact: the prompt as a prompt, the continuation without BOS.
    head, tail = model.tokenize(prompt), model.tokenize(continuation, add_special=False)
    rows = log_softmax(model.logits(head + tail, steering=steering))[len(head) - 1:-1]  # row i predicts token i+1
    return float(rows[np.arange(len(tail)), tail].mean())

def next_token(prompt, steering):
    return log_softmax(model.logits(prompt, steering=steering)[-1])

base = {p: next_token(p, None) for p in prompts}
rows = []
for coef in coefs:
    # ActAdd's tensor goes at the first positions of each text (the paper's alignment).
    steering = tiller.Steering(actadd=[dict(positive="Love", negative="Hate", layer=args.layer, coef=coef)])
    on = np.mean([mean_logprob(p, c, steering) for p in prompts for c in on_topic])
    off = np.mean([mean_logprob(p, c, steering) for p in prompts for c in off_topic])
    kl = np.mean([float(np.exp(base[p]) @ (base[p] - next_token(p, steering))) for p in prompts])
    rows.append((coef, on, off, kl))

print(f"ActAdd 'Love' - 'Hate' at blocks.{args.layer}.hook_resid_pre on {model.config['name']}")
print(" coef  on-topic  gain    off-topic  damage   KL(next token)")
for coef, on, off, kl in rows:
    print(f"{coef:5g}  {on:8.3f}  {on - rows[0][1]:+.3f}  {off:9.3f}  {off - rows[0][2]:+.3f}   {kl:.4f}")

c, on, off, kl = map(np.array, zip(*rows))
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
left.plot(c, on - on[0], "o-", label="on topic (gain)")
left.plot(c, off - off[0], "s-", label="off topic (damage)")
left.axhline(0, color="grey", lw=0.5)
left.set(xlabel="coefficient", ylabel="change in mean log-prob per token (nats)", title="likelihood")
left.legend()
right.plot(c, kl, "o-", color="C3")
right.set(xlabel="coefficient", ylabel="nats", title="KL(unsteered || steered), next token")
fig.suptitle(f"ActAdd 'Love' - 'Hate', block {args.layer}, {Path(model.path).stem}")
fig.tight_layout()
png = out / "sweep_coefficient.png"
fig.savefig(png, dpi=100)
print(f"plot: {png}")

assert kl[0] == 0.0 and on[0] == rows[0][1], "coefficient 0 must leave the model unchanged"
assert kl[-1] > kl[1] > 0, "a larger coefficient should move the distribution further"
assert (on - on[0]).max() > 0, "no coefficient made the on-topic text likelier"
assert png.stat().st_size > 0
print("OK")
