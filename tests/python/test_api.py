"""What the package promises beyond agreement with the command line: the shapes and
types it returns, control-vector files and arithmetic, the two ways of writing a
steering, hooks that edit or replace, streams, the GIL released, Ctrl-C, and a
TillerError with the engine's one-line message for every bad input."""

import os
import signal
import threading
import time

import numpy as np
import pytest

import tiller
from conftest import DATA, load


def test_config_and_tokens(any_model):
    c = any_model.config
    for key in ("n_layer", "n_embd", "n_head", "n_head_kv", "n_vocab", "architecture"):
        assert key in c
    assert c["architecture"] in ("llama", "gemma3") and c["family"] == c["architecture"]
    ids = any_model.tokenize("Hello, world!")
    assert all(isinstance(i, int) for i in ids)
    assert any_model.detokenize(ids).endswith("Hello, world!")
    assert len(any_model.tokenize("Hello", add_special=False)) < len(any_model.tokenize("Hello")) or \
        any_model.tokenize("Hello", add_special=False) == any_model.tokenize("Hello")
    assert len(any_model.hook_names) == 5 * c["n_layer"]
    assert any_model.hook_names[0] == "blocks.0.hook_resid_pre"


def test_text_cut_inside_a_character_is_replaced_not_an_error(any_model):
    ids = any_model.tokenize("🌸🌸🌸", add_special=False)
    whole = any_model.detokenize(ids)
    assert whole == "🌸🌸🌸"
    cuts = [any_model.detokenize(ids[:cut]) for cut in range(1, len(ids))]
    for text in cuts:
        assert whole.startswith(text.rstrip("\ufffd"))
    if len(ids) > 3:  # byte-level tokens: some cuts end inside a character
        assert any(text.endswith("\ufffd") for text in cuts)
    # A generation stopped by its length inside a character gives a string too.
    for n in range(1, 6):
        assert isinstance(any_model.generate("🌸", max_tokens=n, seed=n, temperature=1.5, top_k=0, top_p=1.0,
                                             min_p=0.0), str)


def test_logits_shape_and_ids_forms(smol):
    ids = smol.tokenize("One two three four")
    logits = smol.logits(ids)
    assert logits.dtype == np.float32 and logits.shape == (len(ids), smol.config["n_vocab"])
    assert logits.flags.c_contiguous and logits.flags.writeable
    assert np.array_equal(smol.logits(np.array(ids, dtype=np.int64)), logits)


def test_arrays_freed_and_reused_hold_only_the_new_pass(smol):
    # Arrays of 1 MiB and more live in mapped regions kept for the next call (module.cpp).
    first, second = "one two three four five six seven eight", "nine ten eleven twelve thirteen fourteen"
    want_first, want_second = smol.logits(first).copy(), smol.logits(second).copy()
    assert want_first.nbytes >= 1 << 20 and want_second.nbytes >= 1 << 20
    for _ in range(3):
        assert np.array_equal(smol.logits(first), want_first)
        assert np.array_equal(smol.logits(second), want_second)
    _, cache = smol.run_with_cache(first)
    kept = {name: array.copy() for name, array in cache.items()}
    del cache
    _, cache = smol.run_with_cache(second)
    _, again = smol.run_with_cache(first)
    assert all(np.array_equal(again[name], kept[name]) for name in kept)
    assert not np.array_equal(cache["blocks.3.hook_resid_post"][:1], np.zeros((1, 576), np.float32))


def test_control_vector_files_and_arithmetic(tmp_path):
    path = DATA / "steering" / "smollm2-135m-instruct-meandiff.gguf"
    a = tiller.ControlVector.load(path)
    assert a.model_hint == "llama" and a.n_embd == 576 and a.blocks
    b = tiller.ControlVector.from_directions({1: np.ones(576), 40: np.full(576, 2.0)}, "llama")
    assert b.directions[1].dtype == np.float32
    total = a + b
    assert set(total.blocks) == set(a.blocks) | {1, 40}
    assert np.array_equal(total.directions[1], a.directions.get(1, 0) + b.directions[1])
    assert np.array_equal((a - a).directions[a.blocks[0]], np.zeros(576, np.float32))
    assert np.allclose((a * 0.5).directions[a.blocks[-1]], a.directions[a.blocks[-1]] / 2)
    assert np.array_equal((0.5 * a).directions[a.blocks[0]], (a * 0.5).directions[a.blocks[0]])
    assert np.array_equal((-a).directions[a.blocks[0]], -a.directions[a.blocks[0]])
    total.save(tmp_path / "sum.gguf")
    again = tiller.ControlVector.load(tmp_path / "sum.gguf")
    assert again.blocks == total.blocks
    for block in total.blocks:
        assert np.array_equal(again.directions[block], total.directions[block])
    with pytest.raises(tiller.TillerError, match="width"):
        a + tiller.ControlVector({3: np.ones(8)})
    with pytest.raises(tiller.TillerError, match="width"):
        tiller.ControlVector({3: np.ones(8), 4: np.ones(9)})


def test_steering_forms_agree(smol, tmp_path):
    path = str(DATA / "steering" / "smollm2-135m-instruct-meandiff.gguf")
    vector = tiller.ControlVector.load(path)
    text = "The weather today is"
    by_path = smol.logits(text, steering=tiller.Steering(control_vectors=[(path, 3.0)], positions="prompt"))
    held = smol.logits(text, steering=tiller.Steering(control_vectors=[(vector, 3.0)], positions="prompt"))
    as_dict = smol.logits(text, steering={"control_vectors": [{"path": path, "scale": 3.0}], "positions": "prompt"})
    scaled = smol.logits(text, steering=tiller.Steering(control_vectors=[(vector * 3.0, 1.0)], positions="prompt"))
    assert np.array_equal(by_path, held) and np.array_equal(by_path, as_dict)
    assert np.allclose(by_path, scaled, atol=1e-3)
    assert not np.array_equal(by_path, smol.logits(text))
    # The steering reads a ControlVector's values when it is made.
    steering = tiller.Steering(control_vectors=[(vector, 3.0)], positions="prompt")
    vector.directions[vector.blocks[0]][:] = 100.0
    assert np.array_equal(smol.logits(text, steering=steering), by_path)


def test_hooks_edit_in_place_or_replace(smol):
    text = "A quiet morning in the village"
    plain = smol.logits(text)
    seen = []

    def zero(activation, positions):
        seen.append((activation.shape, positions.tolist()))
        activation[:] = 0.0

    def replaced(activation, positions):
        return np.zeros_like(activation)

    edited = smol.run_with_hooks(text, [("blocks.10.hook_resid_post", zero)])
    assert seen == [((len(smol.tokenize(text)), 576), list(range(len(smol.tokenize(text)))))]
    assert np.array_equal(edited, smol.run_with_hooks(text, [("blocks.10.hook_resid_post", replaced)]))
    assert not np.array_equal(edited, plain)
    # A hook that only reads changes nothing; the pass after a hook is the plain one again.
    assert np.array_equal(smol.run_with_hooks(text, [("blocks.*.hook_mlp_out", lambda a, p: None)]), plain)
    assert np.array_equal(smol.logits(text), plain)


def test_a_hook_sees_the_stream_after_the_steering_there(smol):
    path = str(DATA / "steering" / "smollm2-135m-instruct-meandiff.gguf")
    steering = tiller.Steering(control_vectors=[(path, 2.0)])
    block = tiller.ControlVector.load(path).blocks[0]
    name = f"blocks.{block}.hook_resid_post"
    _, cache = smol.run_with_cache("Hello there", names=[name], steering=steering)
    seen = []
    smol.run_with_hooks("Hello there", [(name, lambda a, p: seen.append(a.copy()))], steering=steering)
    assert np.array_equal(seen[0], cache[name])


def test_hook_errors_propagate_and_leave_the_model_usable(smol):
    text = "Some words"
    plain = smol.logits(text)

    def boom(activation, positions):
        raise ValueError("boom from the hook")

    with pytest.raises(ValueError, match="boom from the hook"):
        smol.run_with_hooks(text, [("blocks.2.hook_attn_out", boom)])
    with pytest.raises(tiller.TillerError, match="float32"):
        smol.run_with_hooks(text, [("blocks.2.hook_attn_out", lambda a, p: np.zeros((1, 3), np.float32))])
    with pytest.raises(tiller.TillerError, match="hook_nonsense"):
        smol.run_with_hooks(text, [("blocks.2.hook_nonsense", lambda a, p: None)])
    with pytest.raises(tiller.TillerError, match="not callable"):
        smol.run_with_hooks(text, [("blocks.2.hook_attn_out", 42)])
    assert np.array_equal(smol.logits(text), plain)


def test_a_hook_calling_its_own_model_is_an_error_not_a_deadlock(smol):
    def reenter(activation, positions):
        smol.logits("inner")

    with pytest.raises(tiller.TillerError, match="a hook cannot run the model"):
        smol.run_with_hooks("outer", [("blocks.1.hook_resid_post", reenter)])
    assert smol.logits("after").shape[0] > 0


def test_a_kept_view_never_points_at_freed_memory():
    model = tiller.Model(load("smollm2-135m-instruct").path, threads=1)
    kept = []
    model.run_with_hooks("Hello", [("blocks.0.hook_resid_pre", lambda a, p: kept.append(a))])
    del model
    assert kept[0].shape[1] == 576 and np.isfinite(kept[0].sum())


def test_stream_gives_the_same_text_and_leaves_the_model_free(smol):
    kwargs = dict(max_tokens=20, seed=7, temperature=0.8)
    text = smol.generate("The garden", **kwargs)
    stream = smol.generate("The garden", stream=True, **kwargs)
    first = next(stream)
    assert smol.logits("meanwhile").shape[0] >= 1  # the model works while the stream is open
    pieces = [first] + list(stream)
    assert "".join(pieces) == text
    assert stream.result["text"] == text and stream.result["seed"] == 7
    with smol.generate("The garden", stream=True, max_tokens=200, ignore_eos=True) as early:
        next(early)
    assert early.result["stop_reason"] == "cancelled"


def test_generation_options(smol):
    text = smol.generate("Count: one, two, three,", max_tokens=40, temperature=0, stop=[" six"])
    assert " six" not in text and smol.last_generation["stop_reason"] in ("stop", "eog", "length")
    chat = smol.generate("Say hello.", max_tokens=12, temperature=0, chat=True, system="You are terse.")
    assert isinstance(chat, str) and chat
    assert smol.generate("x", max_tokens=5, seed=3) == smol.generate("x", max_tokens=5, seed=3)
    with pytest.raises(tiller.TillerError, match="chat"):
        smol.generate("x", system="no chat")


def test_the_gil_is_released_while_the_engine_computes(smol):
    done = threading.Event()
    counter = 0

    def work():
        smol.generate("Tell me a story", max_tokens=60, temperature=0, ignore_eos=True)
        done.set()

    thread = threading.Thread(target=work)
    thread.start()
    while not done.is_set():
        counter += 1
    thread.join()
    # Holding the GIL through the call would stall this loop for the call's whole length.
    assert counter > 10000


def test_ctrl_c_interrupts_a_generation(smol):
    # Python leaves SIGINT ignored when it starts with it ignored, as a shell starts
    # background jobs (`.ci/run &`); Ctrl-C's handler is what is under test here.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
        start = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            smol.generate("Once", max_tokens=4000, ignore_eos=True, temperature=0)
        assert time.monotonic() - start < 20
    finally:
        signal.signal(signal.SIGINT, previous)
    assert smol.logits("still works").shape[0] > 0


def test_bad_input_is_a_one_line_tillererror(smol, tmp_path):
    def message(call):
        with pytest.raises(tiller.TillerError) as info:
            call()
        text = str(info.value)
        assert text and "\n" not in text
        return text

    assert "no-such-model" in message(lambda: tiller.Model("no-such-model"))
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 5)
    assert "broken.gguf" in message(lambda: tiller.Model(str(broken)))
    assert "vocabulary" in message(lambda: smol.logits([1, 10 ** 7]))
    assert "no tokens" in message(lambda: smol.logits([]))
    wide = tiller.ControlVector({3: np.ones(100)})
    assert "width 100" in message(lambda: smol.logits("x", steering=tiller.Steering(control_vectors=[(wide, 1.0)])))
    assert "unknown" in message(lambda: tiller.Steering({"control_vectorz": []})).lower()
    assert "block 99" in message(
        lambda: smol.logits("x", steering=tiller.Steering(actadd=[dict(positive="a", negative="b", layer=99)])))
    long_pair = dict(positive="a very long positive prompt with many words", negative="b", layer=3)
    assert "prompt" in message(lambda: smol.logits("hi", steering=tiller.Steering(actadd=[long_pair])))
    assert "threads" in message(lambda: tiller.Model(smol.path, threads=0))
    assert "n_ctx" in message(lambda: tiller.Model(smol.path, n_ctx=4).logits("a rather longer text than four tokens"))
    assert "kernel" in message(lambda: tiller.Model(smol.path, kernels="sse9")).lower()
    assert "positive" in message(lambda: tiller.ControlVector.train(smol, "a", "b"))
    assert "paired" in message(lambda: tiller.ControlVector.train(smol, ["a", "b"], ["c"]))
    for layers in ("5-40", 40, [3, 40]):
        assert "layers: block" in message(lambda: tiller.ControlVector.train(smol, ["a"], ["b"], layers=layers))
    assert "not A-B" in message(lambda: tiller.ControlVector.train(smol, ["a"], ["b"], layers="x"))
    assert "negative" in message(lambda: smol.generate("x", seed=-1))
    vector = tiller.ControlVector({3: np.ones(576)})
    assert "tensor file" in message(lambda: tiller.Steering(actadd=[dict(file=vector)]))


def test_kernel_levels(smol):
    levels = tiller.available_kernel_levels()
    assert levels[0] == "portable"
    assert smol.config["kernels"] == (os.environ.get("TILLER_KERNELS") or levels[-1])
    portable = tiller.Model(smol.path, threads=1, kernels="portable")
    assert portable.config["kernels"] == "portable"
    a, b = portable.logits("Hello world"), smol.logits("Hello world")
    assert (a.argmax(1) == b.argmax(1)).all()


def test_mmap_maps_the_file_and_gives_the_same_logits(smol):
    # The default reads the weights into memory; mmap=True maps the file as llama.cpp
    # does. SmolLM2 has no Q4_K or Q6_K matrices (those are interleaved when read,
    # on an AVX-512 VNNI CPU), so the bytes are the file's either way: the same bits.
    assert smol.config["weights"] == "read"
    mapped = tiller.Model(smol.path, threads=smol.config["threads"], kernels=smol.config["kernels"], mmap=True)
    assert mapped.config["weights"] == "mapped"
    ids = smol.tokenize("The weights are the file's bytes either way.")
    assert np.array_equal(mapped.logits(ids), smol.logits(ids))
