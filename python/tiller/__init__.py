"""Tiller: run GGUF language models on a CPU, read their residual stream, and steer them.

    import tiller
    model = tiller.Model("smollm2-135m-instruct")
    logits = model.logits("The capital of France is")          # float32 [n_tokens, n_vocab]
    logits, cache = model.run_with_cache("Hello", names=["blocks.5.hook_resid_post"])
    happy = tiller.ControlVector.train(model, positive=[...], negative=[...])
    print(model.generate("I feel", steering=tiller.Steering(control_vectors=[(happy, 4.0)])))

Hook names follow TransformerLens: ``blocks.L.hook_resid_pre``, ``hook_attn_out``,
``hook_resid_mid``, ``hook_mlp_out``, ``hook_resid_post``. Steering is described by
``tiller.Steering``, the same object as the library's steering JSON
(docs/steering.md). Every engine error raises ``tiller.TillerError`` with the
engine's one-line message. See docs/python.md.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _tiller
from ._tiller import TillerError

__all__ = ["Model", "ControlVector", "Steering", "GenerationStream", "TillerError", "models_dir",
           "available_kernel_levels"]
__version__ = "0.1.0"

TextOrIds = Union[str, Sequence[int], np.ndarray]
Hook = Callable[[np.ndarray, np.ndarray], Optional[np.ndarray]]


def models_dir() -> Path:
    """The folder model names resolve in: ``$TILLER_MODELS``, else ``~/.cache/tiller/models``
    (where ``scripts/fetch-models.sh`` puts them), as for the command line."""
    configured = os.environ.get("TILLER_MODELS")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "tiller" / "models"


def available_kernel_levels() -> List[str]:
    """The kernel levels this CPU runs, lowest first (``portable``, ``avx2``, ``avx2tiled``, ``avx512vnni``)."""
    return list(_tiller.available_kernel_levels())


# ---------------------------------------------------------------------------- vectors


class ControlVector:
    """A control vector: one direction per block, added to ``blocks.N.hook_resid_post``
    (llama.cpp's control-vector GGUF layout, which llama.cpp, repeng and Tiller read).

    ``directions`` maps a block index to a float32 array of the stream's width.
    Vectors add, subtract, negate and scale (``a + b``, ``a - b``, ``-a``, ``a * 0.5``);
    a block missing in one operand counts as zero there, as when llama.cpp sums files.
    """

    def __init__(self, directions: Mapping[int, Any], model_hint: str = "") -> None:
        self.model_hint = model_hint
        self.directions: Dict[int, np.ndarray] = {}
        width = None
        for block, values in sorted(directions.items()):
            array = np.ascontiguousarray(values, dtype=np.float32)
            if array.ndim != 1 or array.size == 0:
                raise TillerError(f"direction {block}: needs a non-empty 1-D array, got shape {array.shape}")
            if width is not None and array.size != width:
                raise TillerError(f"direction {block} has width {array.size}, the others {width}")
            if int(block) < 0:
                raise TillerError(f"a control vector's blocks are numbered from 0, not {block}")
            width = array.size
            self.directions[int(block)] = array
        if not self.directions:
            raise TillerError("a control vector needs at least one direction")

    @classmethod
    def from_directions(cls, directions: Mapping[int, Any], model_hint: str = "") -> "ControlVector":
        """A vector from ``{block: array}`` (copied as float32); ``model_hint`` is the architecture it is for."""
        return cls(directions, model_hint)

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "ControlVector":
        """Reads a control-vector GGUF (llama.cpp's layout)."""
        hint, directions = _tiller.read_control_vector(os.fspath(path))
        return cls(directions, hint)

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes llama.cpp's control-vector GGUF, which ``llama-cli --control-vector`` and ``tiller`` read."""
        _tiller.write_control_vector(os.fspath(path), self.model_hint, self.directions)

    @property
    def n_embd(self) -> int:
        """The stream width the directions have."""
        return int(next(iter(self.directions.values())).size)

    @property
    def blocks(self) -> List[int]:
        return sorted(self.directions)

    def norms(self) -> Dict[int, float]:
        """The length of each block's direction."""
        return {block: float(np.linalg.norm(values)) for block, values in sorted(self.directions.items())}

    @classmethod
    def train(cls, model: "Model", positive: Sequence[str], negative: Sequence[str], method: str = "pca-diff",
              layers: Union[None, str, int, Iterable[int]] = None, read: str = "last", chat: bool = False,
              system: str = "", chat_template: str = "", scale: str = "projection",
              hook_point: str = "resid_post", batch_size: int = 512,
              progress: Optional[Callable[[int, int], None]] = None) -> "ControlVector":
        """Extracts a vector from paired prompts, as ``tiller vector train`` does with
        ``--positive-file``/``--negative-file`` and the same options.

        method: ``mean`` (CAA's mean difference), ``pca-diff`` (repeng's default) or ``pca-center``.
        layers: blocks to read (``"A-B"``, a block, or an iterable of blocks); None: every block but 0.
        read: which token of each prompt is read: ``last``, ``mean`` or ``index:K``.
        chat: wrap each prompt in the model's chat template as a user turn (``system`` and
        ``chat_template`` as for generation). scale: ``projection`` (coefficient 1 adds one typical
        difference) or ``unit``. progress: called as ``progress(pairs_done, tokens_done)`` after each pass.
        The statistics per block (mean gap, explained share) are in ``.train_stats`` afterwards.
        """
        if isinstance(positive, str) or isinstance(negative, str):
            raise TillerError("positive and negative are lists of prompts, not single strings")
        blocks = _blocks(layers, model.config["n_layer"])
        hint, directions, stats = model._core.train_vector(
            list(positive), list(negative), method, blocks, read, chat, system, chat_template, scale, hook_point,
            int(batch_size), progress)
        vector = cls(directions, hint)
        vector.train_stats = stats
        return vector

    def _combine(self, other: "ControlVector", sign: float) -> "ControlVector":
        if not isinstance(other, ControlVector):
            return NotImplemented
        if other.n_embd != self.n_embd:
            raise TillerError(f"cannot combine vectors of widths {self.n_embd} and {other.n_embd}")
        out = {block: values.copy() for block, values in self.directions.items()}
        for block, values in other.directions.items():
            out[block] = out[block] + sign * values if block in out else sign * values
        return ControlVector(out, self.model_hint or other.model_hint)

    def __add__(self, other: "ControlVector") -> "ControlVector":
        return self._combine(other, 1.0)

    def __sub__(self, other: "ControlVector") -> "ControlVector":
        return self._combine(other, -1.0)

    def __mul__(self, factor: float) -> "ControlVector":
        if not isinstance(factor, (int, float, np.floating, np.integer)):
            return NotImplemented
        return ControlVector({b: v * np.float32(factor) for b, v in self.directions.items()}, self.model_hint)

    __rmul__ = __mul__

    def __truediv__(self, divisor: float) -> "ControlVector":
        return self * (1.0 / divisor)

    def __neg__(self) -> "ControlVector":
        return self * -1.0

    def __repr__(self) -> str:
        blocks = self.blocks
        span = f"{blocks[0]}-{blocks[-1]}" if len(blocks) > 1 else str(blocks[0])
        return f"ControlVector(model_hint={self.model_hint!r}, n_embd={self.n_embd}, blocks={span})"


def _blocks(layers: Union[None, str, int, Iterable[int]], n_layer: int) -> List[int]:
    """The blocks "A-B" (inclusive), "L", L or an iterable name, each checked; [] for None (the engine's default)."""
    if layers is None:
        return []
    if isinstance(layers, str):
        text = layers.strip()
        try:
            if "-" in text[1:]:
                first, last = text.split("-", 1)
                blocks = list(range(int(first), int(last) + 1))
            else:
                blocks = [int(text)]
        except ValueError:
            raise TillerError(f"layers: '{layers}' is not A-B or a block number") from None
        if not blocks:
            raise TillerError(f"layers: '{layers}' names no block")
    elif isinstance(layers, (int, np.integer)):
        blocks = [int(layers)]
    else:
        blocks = sorted({int(b) for b in layers})
    for b in blocks:
        if b < 0 or b >= n_layer:
            raise TillerError(f"layers: block {b} does not exist (the model has blocks 0 to {n_layer - 1})")
    return blocks


# ---------------------------------------------------------------------------- steering


VectorLike = Union[ControlVector, str, os.PathLike]


class Steering:
    """What to do to the residual stream: the library's steering object (docs/steering.md).

    Either keyword arguments::

        Steering(control_vectors=[(happy, 0.8), ("formal.gguf", -0.3)], layer_range=(5, 20),
                 actadd=[dict(positive="Love", negative="Hate", layer=6, coef=5)],
                 ablate=[(refusal, 1.0)], clamp=[(vector, 2.0)], positions="all")

    or the JSON dict itself (``Steering({"control_vectors": [{"path": "x.gguf", "scale": 2}]})``).
    A vector is a ``ControlVector`` (its values are copied now) or a path to a
    control-vector GGUF. Accepted wherever ``steering=`` is; compiled once per model.
    """

    def __init__(self, spec: Optional[Mapping[str, Any]] = None, *,
                 control_vectors: Sequence[Tuple[VectorLike, float]] = (),
                 layer_range: Optional[Tuple[int, int]] = None,
                 actadd: Sequence[Mapping[str, Any]] = (),
                 ablate: Sequence[Tuple[VectorLike, float]] = (),
                 clamp: Sequence[Tuple[VectorLike, float]] = (),
                 positions: str = "all") -> None:
        held: Dict[str, Tuple[str, Dict[int, np.ndarray]]] = {}

        def ref(vector: VectorLike) -> Dict[str, str]:
            if isinstance(vector, ControlVector):
                name = f"python-vector-{len(held)}"
                held[name] = (vector.model_hint, vector.directions)
                return {"name": name}
            if isinstance(vector, (str, os.PathLike)):
                return {"path": os.fspath(vector)}
            raise TillerError(f"a vector is a tiller.ControlVector or a path, not {type(vector).__name__}")

        def pairs(items: Sequence[Tuple[VectorLike, float]], key: str, what: str) -> List[Dict[str, Any]]:
            out = []
            for item in items:
                if not isinstance(item, (tuple, list)) or len(item) != 2:
                    raise TillerError(f"{what}: each entry is (vector, {key}), got {item!r}")
                out.append({**ref(item[0]), key: float(item[1])})
            return out

        if spec is not None:
            if any([control_vectors, layer_range, actadd, ablate, clamp, positions != "all"]):
                raise TillerError("give a steering either as a JSON dict or as keyword arguments, not both")
            document = _with_held_vectors(dict(spec), ref)
        else:
            document = {}
            if control_vectors:
                document["control_vectors"] = pairs(control_vectors, "scale", "control_vectors")
            if layer_range is not None:
                document["layer_range"] = [int(layer_range[0]), int(layer_range[1])]
            if actadd:
                document["actadd"] = [_actadd_entry(a, ref) for a in actadd]
            if ablate:
                document["ablate"] = pairs(ablate, "scale", "ablate")
            if clamp:
                document["clamp"] = pairs(clamp, "value", "clamp")
            if positions != "all":
                document["positions"] = positions
        self._core = _tiller.Steering(json.dumps(document), held)

    def to_json(self) -> str:
        """The steering object as the library writes it (in-memory vectors appear by their internal names)."""
        return self._core.to_json()

    def __repr__(self) -> str:
        return f"Steering({self.to_json()})"


def _actadd_entry(entry: Mapping[str, Any], ref: Callable[[VectorLike], Dict[str, str]]) -> Dict[str, Any]:
    out = dict(entry)
    if "file" in out:
        file = out.pop("file")
        if not isinstance(file, (str, os.PathLike)):
            raise TillerError("actadd: 'file' is the path of a tensor file from `tiller vector actadd`; "
                              "for a computed pair give positive, negative and layer")
        out["path"] = os.fspath(file)
    return out


def _with_held_vectors(document: Dict[str, Any], ref: Callable[[VectorLike], Dict[str, str]]) -> Dict[str, Any]:
    """A JSON dict may carry ControlVector objects where a path would go: {"vector": v, "scale": 2}."""
    for key in ("control_vectors", "ablate", "clamp", "actadd"):
        if key in document and isinstance(document[key], list):
            entries = []
            for entry in document[key]:
                if isinstance(entry, Mapping) and "vector" in entry:
                    entry = dict(entry)
                    entry.update(ref(entry.pop("vector")))
                entries.append(entry)
            document[key] = entries
    return document


def _steering_core(steering: Union[None, Steering, Mapping[str, Any]]) -> Any:
    if steering is None:
        return None
    if isinstance(steering, Steering):
        return steering._core
    if isinstance(steering, Mapping):
        return Steering(steering)._core
    raise TillerError(f"steering is a tiller.Steering or its JSON dict, not {type(steering).__name__}")


# ---------------------------------------------------------------------------- the model


class GenerationStream:
    """The pieces of a streamed generation, as they become printable. Iterate it;
    ``result`` (a dict: text, tokens, stop_reason, n_prompt, prompt_seconds,
    generation_seconds, seed) is whole
    once it is exhausted. ``close()`` ends it early. Runs on its own session, so the
    model stays usable while a stream is open."""

    def __init__(self, core: Any) -> None:
        self._core = core

    def __iter__(self) -> "GenerationStream":
        return self

    def __next__(self) -> str:
        while True:
            piece = self._core.next()
            if piece is None:
                raise StopIteration
            if piece:
                return piece

    def close(self) -> None:
        self._core.cancel()
        while self._core.next() is not None:
            pass

    @property
    def result(self) -> Dict[str, Any]:
        return self._core.result()

    def __enter__(self) -> "GenerationStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Model:
    """A GGUF language model, loaded once, with the engine it runs on.

    name_or_path: a model name from the model folder (``tiller.models_dir()``; fetch
    them with ``scripts/fetch-models.sh``) or a path to a ``.gguf`` file.
    n_ctx: positions one pass or generation may hold (None: the model's training
    context, at most 4096). threads: None uses every hardware thread. kernels: a level
    from ``available_kernel_levels()`` (None: ``$TILLER_KERNELS``, else the best).
    n_batch: tokens per forward pass. mmap: map the file instead of reading the weights
    into memory (a faster load and pages shared between processes, slower generation;
    ``config["weights"]`` says which).

    Text arguments (``text_or_ids``) are tokenized as a plain text, BOS added where the
    model adds one, special tokens not parsed: what ``tiller logits`` and ``tiller dump``
    do. A list of ids is used as it is. Calls on one Model run one at a time; the GIL
    is released while the engine computes, and Ctrl-C interrupts between chunks and tokens.
    """

    def __init__(self, name_or_path: Union[str, os.PathLike] = "smollm2-135m-instruct",
                 n_ctx: Optional[int] = None, threads: Optional[int] = None,
                 kernels: Optional[str] = None, n_batch: int = 512, mmap: bool = False) -> None:
        path = _tiller.resolve_model_path(os.fspath(name_or_path), os.fspath(models_dir()))
        if threads is None:
            threads = max(1, min(os.cpu_count() or 1, 64))
        if kernels is None:
            kernels = os.environ.get("TILLER_KERNELS") or None
        self._core = _tiller.Model(path, int(n_ctx or 0), int(threads), kernels, int(n_batch), bool(mmap))
        self.path = path

    @property
    def config(self) -> Dict[str, Any]:
        """architecture, n_layer, n_embd, n_head, n_head_kv, n_vocab, head_dim, n_ff,
        n_ctx_train, and this Model's n_ctx, n_batch, threads, kernels, file and weights
        ("read" into memory or "mapped")."""
        return dict(self._core.config)

    @property
    def hook_names(self) -> List[str]:
        """Every hook point, in the order a pass reaches them."""
        return list(self._core.hook_names())

    def tokenize(self, text: str, add_special: bool = True, special: bool = False) -> List[int]:
        """Token ids exactly as llama.cpp gives them (add_special: BOS/EOS where the model
        adds them; special: parse special tokens written in the text)."""
        return list(self._core.tokenize(text, add_special, special))

    def detokenize(self, ids: Sequence[int], special: bool = False) -> str:
        """The text of the ids (special: render control tokens too)."""
        return self._core.detokenize(_ids(ids), special)

    def _ids(self, text_or_ids: TextOrIds) -> List[int]:
        if isinstance(text_or_ids, str):
            return self.tokenize(text_or_ids)
        return _ids(text_or_ids)

    def logits(self, text_or_ids: TextOrIds, steering: Union[None, Steering, Mapping[str, Any]] = None) -> np.ndarray:
        """Next-token logits at every position: float32 ``[n_tokens, n_vocab]``."""
        return self._core.logits(self._ids(text_or_ids), _steering_core(steering))

    def run_with_cache(self, text_or_ids: TextOrIds, names: Union[None, str, Sequence[str]] = None,
                       steering: Union[None, Steering, Mapping[str, Any]] = None
                       ) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        """(logits, cache): the cache maps each hook name asked for (``blocks.L.hook_X``,
        ``blocks.*.hook_X``, or None for all) to float32 ``[n_tokens, n_embd]``, the stream
        at that point after any steering there, as ``tiller dump`` writes it."""
        if isinstance(names, str):
            names = [names]
        return self._core.run_with_cache(self._ids(text_or_ids), None if names is None else list(names),
                                         _steering_core(steering))

    def run_with_hooks(self, text_or_ids: TextOrIds, hooks: Sequence[Tuple[str, Hook]] = (),
                       steering: Union[None, Steering, Mapping[str, Any]] = None) -> np.ndarray:
        """Logits of a pass in which each ``fn(activation, positions)`` runs at its hook point.

        ``activation`` is a writable float32 view ``[n_rows, n_embd]`` of the pass's rows
        there (no copy; a text longer than n_batch comes in several chunks), ``positions``
        their positions. Change it in place, or return an array of its shape to replace
        it; the pass continues from what the hook leaves. The view is only meaningful
        during the call (copy it to keep it). A hook's exception ends the pass and is raised.
        """
        return self._core.run_with_hooks(self._ids(text_or_ids), [(n, f) for n, f in hooks],
                                         _steering_core(steering))

    def generate(self, prompt: str, max_tokens: int = 256, temperature: float = 0.8, top_k: int = 40,
                 top_p: float = 0.95, min_p: float = 0.05, seed: Optional[int] = None, chat: bool = False,
                 system: Optional[str] = None, stop: Union[None, str, Sequence[str]] = None,
                 steering: Union[None, Steering, Mapping[str, Any]] = None, stream: bool = False,
                 repeat_penalty: float = 1.0, repeat_last_n: int = 64, frequency_penalty: float = 0.0,
                 presence_penalty: float = 0.0, ignore_eos: bool = False,
                 chat_template: str = "") -> Union[str, GenerationStream]:
        """A continuation of ``prompt`` with llama.cpp's sampling chain, as ``tiller run`` gives it.

        temperature <= 0 is greedy. seed None draws one (``stream.result["seed"]`` tells
        it). chat wraps the prompt in the model's chat template as a user turn, after
        ``system`` if given. stop: text that ends the generation (not shown). With a
        steering, ActAdd terms go at the user's message (see docs/steering.md). Returns the
        text, or with ``stream=True`` a ``GenerationStream`` of pieces.
        """
        sampling = _tiller.SamplingArgs()
        sampling.max_tokens = int(max_tokens)
        sampling.temperature = float(temperature)
        sampling.top_k = int(top_k)
        sampling.top_p = float(top_p)
        sampling.min_p = float(min_p)
        sampling.repeat_penalty = float(repeat_penalty)
        sampling.repeat_last_n = int(repeat_last_n)
        sampling.frequency_penalty = float(frequency_penalty)
        sampling.presence_penalty = float(presence_penalty)
        if seed is not None and int(seed) < 0:
            raise TillerError(f"seed must not be negative, got {seed}")
        sampling.seed = int(seed) if seed is not None else random.getrandbits(63)
        sampling.stop = [stop] if isinstance(stop, str) else list(stop or [])
        sampling.ignore_eos = bool(ignore_eos)
        args = (prompt, bool(chat), system or "", chat_template, sampling, _steering_core(steering))
        if stream:
            return GenerationStream(self._core.stream(*args))
        self.last_generation: Dict[str, Any] = self._core.generate(*args)
        return self.last_generation["text"]

    def __repr__(self) -> str:
        c = self.config
        return (f"Model({c['file']!r}, architecture={c['architecture']!r}, n_layer={c['n_layer']}, "
                f"n_embd={c['n_embd']}, threads={c['threads']}, kernels={c['kernels']!r})")


def _ids(ids: Union[Sequence[int], np.ndarray]) -> List[int]:
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise TillerError(f"token ids are a 1-D integer array, got {ids.dtype} of shape {ids.shape}")
        return [int(i) for i in ids]
    try:
        return [int(i) for i in ids]
    except (TypeError, ValueError):
        raise TillerError("expected a text or a sequence of token ids") from None
