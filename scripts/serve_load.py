#!/usr/bin/env python3
"""A load generator for OpenAI-compatible servers (`tiller serve`, llama_cpp.server):
N requests, C at a time, a fixed mix, fixed seeds, bounded max_tokens.

Standard library only (http.client and threads), so that the load test runs it in
the test environment and bench/serve-vs-llamacpp in the oracle environment, each
importing this file from scripts/.

The mix: request i belongs to group i // K, where K is the number of kinds asked
for (--kinds unsteered,vector,actadd); the requests of one group share their
prompt, seed, endpoint (chat or text) and mode (streamed or whole) and differ only
in their steering, so that a group's texts show what the steering changed.
Groups alternate streamed/whole and chat/text, and walk through the prompts and
the vector names.

Per request it records the status, latency (send to last byte), time to first
token (streamed requests: to the first chunk with text), tokens generated (the
response's usage; a stream's usage chunk, asked for with stream_options, or when a
server sends none, its chunks with text counted, which the summary says), and the
text. The summary: requests/s, p50/p99 latency, p50 time to first token, aggregate
generated tokens/s (all tokens over the wall time of the whole load), errors by
status.

    scripts/serve_load.py --url http://127.0.0.1:8080 -n 200 -c 16 \\
        --kinds unsteered,vector --vectors happy,sad --max-tokens 32 [--json]
"""
import argparse
import http.client
import json
import math
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Optional
from urllib.parse import urlsplit

KINDS = ("unsteered", "vector", "actadd")
MODES = ("stream", "whole")
ENDPOINTS = ("chat", "text")

PROMPTS = [
    "Tell me about your day.",
    "What do you think of the weather lately?",
    "Describe the city you live in.",
    "Write a short note to a friend.",
    "What is your favourite food, and why?",
    "Give me advice for a job interview.",
    "How should I spend a free Saturday?",
    "Explain what a library is for.",
]


@dataclass
class Spec:
    """One request to send."""
    index: int
    group: int
    kind: str       # unsteered, vector:NAME or actadd
    mode: str       # stream or whole
    endpoint: str   # chat or text
    seed: int
    body: dict

    @property
    def path(self) -> str:
        return "/v1/chat/completions" if self.endpoint == "chat" else "/v1/completions"


@dataclass
class Outcome:
    index: int
    group: int
    kind: str
    mode: str
    endpoint: str
    status: int = 0              # 0: no HTTP status (connection failed)
    error: str = ""
    latency: float = 0.0         # seconds, send to last byte
    ttft: Optional[float] = None  # seconds to the first text (streamed requests)
    tokens: int = 0
    tokens_counted: bool = False  # a stream without a usage chunk: its text chunks counted
    text: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error


def make_specs(n, kinds=("unsteered",), modes=MODES, endpoints=ENDPOINTS, vectors=(), max_tokens=16,
               seed=1000, vector_scale=1.0, actadd=None, temperature=0.8, model=None, extra=None):
    """The mix (see the module's docstring). `actadd` is the ActAdd term sent by
    actadd requests, e.g. {"positive": "Love", "negative": "Hate", "layer": 6, "coef": 4};
    `extra` is merged into every body (a server's own fields)."""
    kinds = list(kinds)
    if "vector" in kinds and not vectors:
        raise ValueError("kind 'vector' needs vector names")
    if "actadd" in kinds and not actadd:
        raise ValueError("kind 'actadd' needs an ActAdd term")
    specs = []
    for i in range(n):
        group = i // len(kinds)
        kind = kinds[i % len(kinds)]
        mode = modes[group % len(modes)]
        endpoint = endpoints[(group // len(modes)) % len(endpoints)]
        prompt = PROMPTS[group % len(PROMPTS)]
        body = {"max_tokens": max_tokens, "temperature": temperature, "seed": seed + group}
        if model:
            body["model"] = model
        if endpoint == "chat":
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        if mode == "stream":
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        label = kind
        if kind == "vector":
            name = vectors[group % len(vectors)]
            body["steering"] = {"control_vectors": [{"name": name, "scale": vector_scale}]}
            label = f"vector:{name}"
        elif kind == "actadd":
            body["steering"] = {"actadd": [dict(actadd)]}
        body.update(extra or {})
        specs.append(Spec(i, group, label, mode, endpoint, seed + group, body))
    return specs


def _read_stream(response, outcome, start):
    """Server-sent events: the text, the first text's time, the usage chunk."""
    pieces, counted, usage = [], 0, None
    while True:
        line = response.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        chunk = json.loads(data)
        if "error" in chunk:
            outcome.error = f"error in stream: {chunk['error'].get('message', chunk['error'])}"
            break
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            text = (choice.get("delta") or {}).get("content") if "delta" in choice else choice.get("text")
            if text:
                if outcome.ttft is None:
                    outcome.ttft = time.perf_counter() - start
                pieces.append(text)
                counted += 1
    outcome.text = "".join(pieces)
    if usage is not None:
        outcome.tokens = int(usage.get("completion_tokens", 0))
    else:
        outcome.tokens, outcome.tokens_counted = counted, True


def send(base_url, spec, headers=None, timeout=300.0):
    """Sends one request and reads its whole answer; never raises."""
    url = urlsplit(base_url)
    outcome = Outcome(spec.index, spec.group, spec.kind, spec.mode, spec.endpoint)
    connection = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=timeout)
    start = time.perf_counter()
    try:
        connection.request("POST", url.path.rstrip("/") + spec.path, body=json.dumps(spec.body),
                           headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        outcome.status = response.status
        if response.status != 200:
            body = response.read().decode("utf-8", "replace")
            try:
                outcome.error = json.loads(body)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                outcome.error = body[:200] or response.reason
        elif spec.mode == "stream":
            _read_stream(response, outcome, start)
        else:
            answer = json.loads(response.read())
            choice = answer["choices"][0]
            outcome.text = choice["message"]["content"] if "message" in choice else choice["text"]
            outcome.tokens = int(answer["usage"]["completion_tokens"])
    except (OSError, http.client.HTTPException, ValueError, KeyError) as error:
        outcome.error = f"{type(error).__name__}: {error}"
    finally:
        connection.close()
    outcome.latency = time.perf_counter() - start
    return outcome


def run_load(base_url, specs, concurrency, headers=None, progress=None, timeout=300.0):
    """Sends `specs`, `concurrency` at a time (each worker takes the next one
    unsent). Returns (outcomes in spec order, wall seconds). `progress`: None
    (a line on stderr when it is a terminal), True or False."""
    if progress is None:
        progress = sys.stderr.isatty()
    lock = threading.Lock()
    done = [0, 0]  # finished, failed

    def one(spec):
        outcome = send(base_url, spec, headers, timeout)
        with lock:
            done[0] += 1
            done[1] += not outcome.ok
            if progress:
                print(f"\r  {done[0]}/{len(specs)} requests, {done[1]} failed", end="", file=sys.stderr, flush=True)
        return outcome

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        outcomes = list(pool.map(one, specs))
    wall = time.perf_counter() - start
    if progress:
        print(file=sys.stderr, flush=True)
    return outcomes, wall


def percentile(values, fraction):
    """Nearest rank: the smallest value with at least `fraction` of them at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summarize(outcomes, wall):
    ok = [o for o in outcomes if o.ok]
    errors = {}
    for o in outcomes:
        if not o.ok:
            errors[str(o.status)] = errors.get(str(o.status), 0) + 1
    tokens = sum(o.tokens for o in ok)
    ttfts = [o.ttft for o in ok if o.ttft is not None]
    latencies = [o.latency for o in ok]
    return {
        "requests": len(outcomes),
        "ok": len(ok),
        "errors": errors,
        "wall_s": wall,
        "requests_per_s": len(ok) / wall if wall > 0 else None,
        "latency_p50_s": percentile(latencies, 0.5),
        "latency_p99_s": percentile(latencies, 0.99),
        "latency_mean_s": statistics.fmean(latencies) if latencies else None,
        "ttft_p50_s": percentile(ttfts, 0.5),
        "tokens": tokens,
        "tokens_counted_from_chunks": sum(1 for o in ok if o.tokens_counted),
        "tok_s": tokens / wall if wall > 0 else None,
    }


def format_summary(summary):
    def ms(value):
        return "-" if value is None else f"{value * 1000:.0f} ms"

    line = (f"{summary['ok']}/{summary['requests']} ok in {summary['wall_s']:.1f} s: "
            f"{summary['requests_per_s']:.2f} req/s, latency p50 {ms(summary['latency_p50_s'])} "
            f"p99 {ms(summary['latency_p99_s'])}, first token p50 {ms(summary['ttft_p50_s'])}, "
            f"{summary['tokens']} tokens, {summary['tok_s']:.1f} tok/s aggregate")
    if summary["errors"]:
        line += ", errors by status (0: no answer) " + ", ".join(f"{k}: {v}" for k, v in sorted(summary["errors"].items()))
    if summary["tokens_counted_from_chunks"]:
        line += f" ({summary['tokens_counted_from_chunks']} streams without usage: text chunks counted)"
    return line


def names(text):
    return [part for part in text.split(",") if part]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the server's base URL (before /v1)")
    parser.add_argument("-n", "--requests", type=int, default=200)
    parser.add_argument("-c", "--concurrency", type=int, default=16)
    parser.add_argument("--kinds", type=names, default=["unsteered"], help=f"comma-separated, of {', '.join(KINDS)}")
    parser.add_argument("--modes", type=names, default=list(MODES), help="stream, whole or both")
    parser.add_argument("--endpoints", type=names, default=list(ENDPOINTS), help="chat, text or both")
    parser.add_argument("--vectors", type=names, default=[], help="control vector names (kind 'vector')")
    parser.add_argument("--vector-scale", type=float, default=1.0)
    parser.add_argument("--actadd", default='{"positive": "Love", "negative": "Hate", "layer": 6, "coef": 4}',
                        help="the ActAdd term of kind 'actadd', as JSON")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=1000, help="group g sends seed SEED+g")
    parser.add_argument("--model", help="the body's 'model'")
    parser.add_argument("--extra", default="{}", help="JSON merged into every body, e.g. '{\"ignore_eos\": true}'")
    parser.add_argument("--api-key")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per request")
    parser.add_argument("--json", action="store_true", help="print the summary and every outcome as JSON")
    args = parser.parse_args(argv)
    for value, allowed, what in ((args.kinds, KINDS, "kind"), (args.modes, MODES, "mode"),
                                 (args.endpoints, ENDPOINTS, "endpoint")):
        for item in value:
            if item not in allowed:
                parser.error(f"unknown {what} '{item}' (one of {', '.join(allowed)})")
    if urlsplit(args.url).scheme != "http" or not urlsplit(args.url).hostname:
        parser.error(f"--url '{args.url}' is not http://HOST[:PORT] (plain HTTP only)")
    if args.requests < 1 or args.concurrency < 1 or args.max_tokens < 1:
        parser.error("--requests, --concurrency and --max-tokens must be at least 1")
    try:
        extra, actadd = json.loads(args.extra), json.loads(args.actadd)
    except ValueError as error:
        parser.error(f"--extra and --actadd take a JSON object: {error}")
    if not isinstance(extra, dict) or not isinstance(actadd, dict):
        parser.error("--extra and --actadd take a JSON object")
    try:
        specs = make_specs(args.requests, args.kinds, args.modes, args.endpoints, args.vectors, args.max_tokens,
                           args.seed, args.vector_scale, actadd, args.temperature, args.model, extra)
    except ValueError as error:
        parser.error(str(error))
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    outcomes, wall = run_load(args.url, specs, args.concurrency, headers, timeout=args.timeout)
    summary = summarize(outcomes, wall)
    if args.json:
        print(json.dumps({"summary": summary, "outcomes": [asdict(o) for o in outcomes]}, indent=1))
    else:
        print(format_summary(summary))
        for o in outcomes:
            if not o.ok:
                print(f"  request {o.index} ({o.kind}, {o.mode}, {o.endpoint}): {o.status} {o.error}")
    return 0 if summary["ok"] == summary["requests"] else 1


if __name__ == "__main__":
    sys.exit(main())
