"""Unsteered and steered completions of one prompt with the same seeds, side by side.

ActAdd (Turner et al.): run "Love" and "Hate" through the model, take the difference
of blocks.6.hook_resid_pre at each position, times 5, and add it at the start of the
prompt. Then a repeng-style control vector, trained here in a second, added at every
block and position of a chat. Same seed, same sampling: only the steering differs.
"""
import argparse
import json
import shutil
import textwrap
from itertools import zip_longest
from pathlib import Path

import tiller

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", default="smollm2-135m-instruct")
parser.add_argument("--tokens", type=int, default=40)
parser.add_argument("--out", default="examples-out", help="folder for completions.json (default: examples-out)")
args = parser.parse_args()
model = tiller.Model(args.model)
width = max(30, min(70, (shutil.get_terminal_size().columns - 3) // 2))

def side_by_side(title, prompt, steering, seeds, **options):
    print(f"\n=== {title}\n    prompt: {prompt!r}\n")
    print(f"{'unsteered':<{width}} | steered")
    changed = 0
    record = {"title": title, "prompt": prompt, "steering": json.loads(steering.to_json()), "pairs": []}
    for seed in seeds:
        plain = model.generate(prompt, max_tokens=args.tokens, seed=seed, **options)
        steered = model.generate(prompt, max_tokens=args.tokens, seed=seed, steering=steering, **options)
        changed += plain != steered
        record["pairs"].append({"seed": seed, "unsteered": plain, "steered": steered})
        left, right = (textwrap.wrap(" ".join(t.split()), width) for t in (plain, steered))
        print("-" * width + "-+-" + "-" * width + f"  seed {seed}")
        for a, b in zip_longest(left, right, fillvalue=""):
            print(f"{a:<{width}} | {b}")
    assert changed == len(seeds), f"steering changed only {changed} of {len(seeds)} completions"
    results.append(record)

results = []

# The same seed gives the same text: what makes the comparison fair.
assert model.generate("I hate you because", max_tokens=8, seed=1) == \
       model.generate("I hate you because", max_tokens=8, seed=1)

# 1. ActAdd. The JSON form is {"actadd": [{"positive": "Love", "negative": "Hate", "layer": 6, "coef": 5}]}.
love = tiller.Steering(actadd=[dict(positive="Love", negative="Hate", layer=6, coef=5)])
side_by_side("ActAdd 'Love' - 'Hate', blocks.6.hook_resid_pre, coef 5", "I hate you because", love,
             seeds=[1, 2, 3])

# 2. A control vector from 12 persona pairs, read in the chat format it will steer
# (a base model without a chat template, such as gemma-3-270m, gets plain prompts).
suffixes = ["Today I", "When I woke up this morning,", "My friend asked me how I was and I said",
            "Looking out of the window, I", "The news this week made me", "At work, my boss",
            "Thinking about the future, I", "The weather outside is", "When I look in the mirror I",
            "My weekend plans are", "Dinner last night was", "I walked into the room and"]
positive = [f"Act as if you are extremely happy. {s}" for s in suffixes]
negative = [f"Act as if you are extremely sad. {s}" for s in suffixes]
try:
    happy = tiller.ControlVector.train(model, positive, negative, chat=True)
    chat, prompt = True, "Tell me about your day."
except tiller.TillerError as error:  # "... has no chat template; ..."
    print(f"\n(no chat: {error})")
    happy = tiller.ControlVector.train(model, positive, negative)
    chat, prompt = False, "Let me tell you about my day. This morning I"
# With scale="projection" (the default) scale 1 adds one typical difference at every
# block, and they add up along the stream: 0.1-0.5 is the useful range (negative: sad).
cheerful = tiller.Steering(control_vectors=[(happy, 0.3)])
side_by_side(f"control vector happy - sad, scale 0.3, every block{' (chat)' if chat else ''}", prompt, cheerful,
             seeds=[1, 2], chat=chat)
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
(out / "completions.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
print(f"\ncompletions: {out / 'completions.json'}\nOK")
