"""The package gives what the command line gives, bit for bit where both run the same
code on the same engine: activations (`tiller dump`), logits (`tiller logits`),
greedy steered generation (`tiller run`), training (`tiller vector train`); and a
Python hook that removes a direction gives what --ablate gives."""

import json

import numpy as np
import pytest

import tiller
from conftest import DATA, load

TEXT = ("The old lighthouse keeper climbed the stairs every evening, counting the steps as his father had, "
        "and watched the ships pass far out beyond the reef.")


def vector_file(model: tiller.Model, kind: str) -> str:
    stem = "smollm2-135m-instruct" if model.config["architecture"] == "llama" else "gemma-3-270m"
    return str(DATA / "steering" / f"{stem}-{kind}.gguf")


def cli_dump(cli, model, tmp_path, hooks, *steering):
    out = tmp_path / "dump"
    cli("dump", "-m", model.path, "-p", TEXT, "--hook", hooks, "-o", str(out), "-t", "2", *steering)
    return {p.stem: np.load(p) for p in out.glob("*.npy")}


@pytest.mark.parametrize("steered", [False, True], ids=["plain", "steered"])
def test_run_with_cache_equals_tiller_dump(any_model, cli, tmp_path, steered):
    vector = vector_file(any_model, "meandiff")
    flags = ["--control-vector-scaled", f"{vector}:2.5", "--steer-positions", "1:9"] if steered else []
    expected = cli_dump(cli, any_model, tmp_path, "all", *flags)
    steering = tiller.Steering(control_vectors=[(vector, 2.5)], positions="1:9") if steered else None
    logits, cache = any_model.run_with_cache(TEXT, steering=steering)
    assert sorted(cache) == sorted(expected) and len(cache) == 5 * any_model.config["n_layer"]
    for name, array in expected.items():
        assert cache[name].dtype == np.float32 and cache[name].shape == array.shape
        assert np.array_equal(cache[name], array), name
    assert logits.shape == (len(any_model.tokenize(TEXT)), any_model.config["n_vocab"])


def test_logits_equal_tiller_logits(any_model, cli, tmp_path):
    out = tmp_path / "logits.npy"
    cli("logits", "-m", any_model.path, "-p", TEXT, "-b", "512", "-t", "2", "--npy", str(out))
    assert np.array_equal(any_model.logits(TEXT), np.load(out))
    # Ids give what their text gives.
    assert np.array_equal(any_model.logits(any_model.tokenize(TEXT)), np.load(out))


def test_selected_names_and_wildcards(smol):
    _, cache = smol.run_with_cache("Hello there", names=["blocks.*.hook_mlp_out", "blocks.3.hook_resid_pre"])
    assert len(cache) == smol.config["n_layer"] + 1
    _, all_cache = smol.run_with_cache("Hello there")
    assert np.array_equal(cache["blocks.3.hook_resid_pre"], all_cache["blocks.3.hook_resid_pre"])
    # resid_post of block L is resid_pre of block L + 1.
    assert np.array_equal(all_cache["blocks.4.hook_resid_post"], all_cache["blocks.5.hook_resid_pre"])


STEERINGS = {
    "actadd": (["--actadd", "Love", "Hate", "--actadd-layer", "6", "--actadd-coef", "5"],
               lambda m: tiller.Steering(actadd=[dict(positive="Love", negative="Hate", layer=6, coef=5)])),
    "control-vector": (["--control-vector-scaled", "{meandiff}:4", "--control-vector-layer-range", "3", "20"],
                       lambda m: tiller.Steering(control_vectors=[(vector_file(m, "meandiff"), 4.0)],
                                                 layer_range=(3, 20))),
    "held-vector": (["--control-vector-scaled", "{meandiff}:-3"],
                    lambda m: tiller.Steering(
                        control_vectors=[(tiller.ControlVector.load(vector_file(m, "meandiff")), -3.0)])),
}


@pytest.mark.parametrize("kind", sorted(STEERINGS))
@pytest.mark.parametrize("chat", [False, True], ids=["plain", "chat"])
def test_greedy_steered_generation_equals_tiller_run(smol, cli, kind, chat):
    flags, make = STEERINGS[kind]
    flags = [f.format(meandiff=vector_file(smol, "meandiff")) for f in flags]
    prompt = "I think that you are"
    chat_flags = ["--chat"] if chat else []
    result = json.loads(cli("run", "-m", smol.path, "-p", prompt, "-n", "24", "--temp", "0", "-t", "2", "--json",
                            *chat_flags, *flags).stdout)
    text = smol.generate(prompt, max_tokens=24, temperature=0, chat=chat, steering=make(smol))
    assert text == result["text"]
    assert smol.last_generation["tokens"] == result["tokens"]
    unsteered = smol.generate(prompt, max_tokens=24, temperature=0, chat=chat)
    assert unsteered != text, "the steering changed nothing"


def test_sampled_generation_equals_tiller_run_with_the_seed(smol, cli):
    args = ["-p", "Once upon a time", "-n", "30", "-s", "1234", "--temp", "0.9", "--top-k", "50", "--top-p", "0.9",
            "--min-p", "0.02", "-t", "2", "--json"]
    result = json.loads(cli("run", "-m", smol.path, *args).stdout)
    text = smol.generate("Once upon a time", max_tokens=30, seed=1234, temperature=0.9, top_k=50, top_p=0.9,
                         min_p=0.02)
    assert text == result["text"]


def test_a_hook_removing_a_direction_equals_ablate(any_model, cli, tmp_path):
    path = vector_file(any_model, "meandiff")
    vector = tiller.ControlVector.load(path)
    expected = cli_dump(cli, any_model, tmp_path, "blocks.*.hook_resid_post", "--ablate", path)
    units = {b: (d / np.sqrt(np.dot(d.astype(np.float64), d.astype(np.float64)))).astype(np.float32)
             for b, d in vector.directions.items()}

    def remove(block):
        u = units[block]

        def hook(activation, positions):
            along = (activation.astype(np.float64) @ u.astype(np.float64)).astype(np.float32)
            activation -= along[:, None] * u[None, :]
        return hook

    hooks = [(f"blocks.{b}.hook_resid_post", remove(b)) for b in units]
    seen = {}
    observe = [(f"blocks.{b}.hook_resid_post", (lambda b: lambda a, p: seen.__setitem__(b, a.copy()))(b))
               for b in range(any_model.config["n_layer"])]
    logits = any_model.run_with_hooks(TEXT, hooks + observe)
    for block in range(any_model.config["n_layer"]):
        got, want = seen[block], expected[f"blocks.{block}.hook_resid_post"]
        scale = np.abs(want).max()
        assert np.abs(got - want).max() <= 1e-5 * scale, block
    steered = any_model.logits(TEXT, steering=tiller.Steering(ablate=[(path, 1.0)]))
    assert np.abs(logits - steered).max() <= 1e-3
    assert (logits.argmax(1) == steered.argmax(1)).all()


@pytest.mark.parametrize("method", ["mean", "pca-diff"])
def test_train_equals_tiller_vector_train(smol, cli, tmp_path, method):
    positive = ["I love this wonderful day", "What a delightful surprise", "You make me so happy",
                "This is the best news ever", "Everything is going great"]
    negative = ["I hate this miserable day", "What a dreadful surprise", "You make me so sad",
                "This is the worst news ever", "Everything is going wrong"]
    (tmp_path / "pos.txt").write_text("\n".join(positive) + "\n")
    (tmp_path / "neg.txt").write_text("\n".join(negative) + "\n")
    out = tmp_path / "cli.gguf"
    cli("vector", "train", "-m", smol.path, "--positive-file", str(tmp_path / "pos.txt"), "--negative-file",
        str(tmp_path / "neg.txt"), "--method", method, "--layers", "2-12", "--read", "mean", "-t", "2", "-o", str(out))
    expected = tiller.ControlVector.load(out)
    vector = tiller.ControlVector.train(smol, positive, negative, method=method, layers="2-12", read="mean")
    assert vector.blocks == expected.blocks == list(range(2, 13))
    for block in vector.blocks:
        assert np.array_equal(vector.directions[block], expected.directions[block]), block
    assert [s["block"] for s in vector.train_stats] == vector.blocks
