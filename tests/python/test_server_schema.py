"""`tiller serve` against its own OpenAPI document (src/server/openapi.json) with
schemathesis (pinned in python/constraints.txt): for every operation, generated
requests (valid ones and, schemathesis' negative mode, invalid ones) must never
get a 5xx, and every response must have a documented status, a documented content
type and a body that fits the documented schema.

Bounded to run in well under two minutes on two cores: a small context (-c 128),
a few examples per operation (derandomized), and the
completions' max_tokens capped at 8 before a request is sent (a generated body may
ask for millions). Every documented operation is served, so none is skipped."""

from pathlib import Path

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

import tiller
from conftest import model_path
from server_support import running_server

MODEL = "smollm2-135m-instruct"
DOCUMENT = Path(__file__).resolve().parents[2] / "src" / "server" / "openapi.json"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 12
MAX_TOKENS = 8

schema = schemathesis.openapi.from_path(DOCUMENT)
cases_run = {}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory, request):
    path = model_path(MODEL)
    vectors = tmp_path_factory.mktemp("schema-vectors")
    width = tiller.Model(path, threads=1).config["n_embd"]
    tiller.ControlVector({12: np.ones(width, dtype=np.float32)}).save(vectors / "probe.gguf")
    with running_server(path, "-t", "2", "-c", "128", "--parallel", "2", "--vector-dir", str(vectors)) as served:
        yield served.url
    total = sum(cases_run.values())
    summary = ", ".join(f"{name} {count}" for name, count in sorted(cases_run.items()))
    # Printed past pytest's capture, so that a passing run shows it too.
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        print(f"\nschemathesis: {total} cases over {len(cases_run)} operations ({summary})")


def bound_generation(case):
    """A completion generates at most MAX_TOKENS tokens, whatever the body asked."""
    body = case.body
    if case.operation.path not in ("/v1/completions", "/v1/chat/completions") or not isinstance(body, dict):
        return
    for field in ("max_tokens", "max_completion_tokens"):
        value = body.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_TOKENS:
            body[field] = MAX_TOKENS
    if "max_tokens" not in body and "max_completion_tokens" not in body:
        body["max_tokens"] = MAX_TOKENS


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_operation_conforms(case, base_url):
    # The operation's own method, not the case's: schemathesis also sends other
    # methods to each path, which must be refused whether or not the route exists.
    method = case.operation.method.upper()
    operation = f"{method} {case.operation.path}"
    bound_generation(case)
    cases_run[operation] = cases_run.get(operation, 0) + 1
    case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=60)


@pytest.mark.parametrize("path, body", [
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}], "stream": True, "max_tokens": 4,
                              "stream_options": {"include_usage": True}}),
    ("/v1/completions", {"prompt": "Once upon", "stream": True, "max_tokens": 4}),
])
def test_stream_conforms(path, body, base_url):
    """Every streamed event fits the documented event schema (its JSON payload a chunk),
    whether or not the generated cases above happened to ask for a stream."""
    case = schema[path]["POST"].Case(body=body, media_type="application/json")
    response = case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=60)
    assert response.headers["content-type"][0].startswith("text/event-stream")
    assert response.text.rstrip().endswith("data: [DONE]")
