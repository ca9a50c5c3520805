"""`tiller serve` spoken to through the official `openai` client (pinned in
python/constraints.txt): the client must work unchanged, greedy answers must equal
`tiller run`'s, steering travels in `extra_body`, and the server's errors must
become the client's exception classes."""

import numpy as np
import openai
import pytest

import tiller
from conftest import model_path
from server_support import running_server, write_push_vector

MODEL = "smollm2-135m-instruct"
KEY = "test-key"
CONTEXT = "512"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = model_path(MODEL)
    vectors = tmp_path_factory.mktemp("vectors")
    write_push_vector(path, vectors / "push.gguf")
    with running_server(path, "-t", "2", "-c", CONTEXT, "--parallel", "2", "--api-key", KEY,
                        "--vector-dir", str(vectors)) as served:
        yield served.url + "/v1"


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server, api_key=KEY, max_retries=0)


def run_text(cli, *args):
    out = cli("run", "-m", model_path(MODEL), "-c", CONTEXT, *args).stdout
    return out[:-1] if out.endswith("\n") else out


def test_models(client):
    assert [model.id for model in client.models.list()] == [MODEL]


def test_greedy_chat_equals_run(client, cli):
    prompt = "What is the capital of France?"
    response = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": prompt}], temperature=0, max_tokens=20)
    assert response.choices[0].message.content == run_text(cli, "--chat", "--temp", "0", "-n", "20", "-p", prompt)
    assert response.usage.completion_tokens > 0


def test_stream_adds_up(client):
    messages = [{"role": "user", "content": "Name a colour."}]
    whole = client.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=12)
    chunks = list(client.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=12,
                                                 stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_text_completion(client, cli):
    response = client.completions.create(model=MODEL, prompt="The sky is", temperature=0, max_tokens=8)
    assert response.choices[0].text == run_text(cli, "--temp", "0", "-n", "8", "-p", "The sky is")


def test_steering_and_compare_through_extra_body(client):
    messages = [{"role": "user", "content": "Tell me about your day."}]
    steering = {"control_vectors": [{"name": "push", "scale": 4.0}]}
    plain = client.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=16)
    both = client.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=16,
                                          extra_body={"steering": steering, "compare": True})
    assert len(both.choices) == 2
    assert both.choices[1].message.content == plain.choices[0].message.content
    assert both.choices[0].message.content != plain.choices[0].message.content


def test_errors_become_the_clients_exceptions(server, client):
    messages = [{"role": "user", "content": "Hi"}]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server, api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(model=MODEL, messages=messages, extra_body={"temperature": "hot"})
    with pytest.raises(openai.NotFoundError, match="nobody"):
        client.chat.completions.create(model=MODEL, messages=messages,
                                       extra_body={"steering": {"control_vectors": [{"name": "nobody"}]}})
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=messages,
                                       extra_body={"steering": {"control_vectors": [{"name": "../push"}]}})


def log_softmax(row):
    row = row.astype(np.float64)
    shifted = row - row.max()
    return shifted - np.log(np.exp(shifted).sum())


def test_greedy_logprob_is_the_log_softmax_of_tiller_logits(client, cli, tmp_path):
    # The first generated token is predicted from the prompt's last row, which
    # `tiller logits` computes over the same tokens (a plain prompt, BOS where the
    # model adds one): the server's logprobs must be its log-softmax.
    prompt = "The capital of France is"
    response = client.completions.create(model=MODEL, prompt=prompt, temperature=0, max_tokens=3, logprobs=5)
    logprobs = response.choices[0].logprobs
    npy = tmp_path / "logits.npy"
    cli("logits", "-m", model_path(MODEL), "-p", prompt, "-t", "2", "--npy", str(npy))
    expected = log_softmax(np.load(npy)[-1])
    best = int(expected.argmax())
    assert abs(logprobs.token_logprobs[0] - expected[best]) < 1e-4
    assert logprobs.tokens[0] == tiller.Model(model_path(MODEL), threads=1).detokenize([best], special=True)
    # The five alternatives are the five largest, most likely first, the chosen one among them.
    top = logprobs.top_logprobs[0]
    assert len(top) == 5
    assert sorted(top.values(), reverse=True) == pytest.approx(sorted(expected, reverse=True)[:5], abs=1e-4)
    assert logprobs.text_offset[0] == 0
    assert response.choices[0].text.startswith(logprobs.tokens[0])


def test_chat_logprobs_as_the_client_parses_them(client):
    messages = [{"role": "user", "content": "Name a colour."}]
    whole = client.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=10,
                                           logprobs=True, top_logprobs=3)
    content = whole.choices[0].logprobs.content
    assert len(content) == whole.usage.completion_tokens
    assert b"".join(bytes(entry.bytes) for entry in content).decode() == whole.choices[0].message.content
    for entry in content:
        assert entry.logprob <= 0
        assert [alt.logprob for alt in entry.top_logprobs] == sorted((alt.logprob for alt in entry.top_logprobs),
                                                                     reverse=True)
        assert len(entry.top_logprobs) == 3
        assert entry.top_logprobs[0].token == entry.token  # greedy: the best one was taken
    # Streamed, each chunk carries the entries of the tokens it adds; together, the whole answer's.
    chunks = client.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=10,
                                            logprobs=True, top_logprobs=3, stream=True)
    streamed = [entry for chunk in chunks if chunk.choices and chunk.choices[0].logprobs
                for entry in chunk.choices[0].logprobs.content]
    assert [(e.token, e.logprob) for e in streamed] == [(e.token, e.logprob) for e in content]
    plain = client.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=2)
    assert plain.choices[0].logprobs is None


def test_completion_logprobs_streamed(client):
    whole = client.completions.create(model=MODEL, prompt="One, two,", temperature=0, max_tokens=6, logprobs=2)
    chunks = list(client.completions.create(model=MODEL, prompt="One, two,", temperature=0, max_tokens=6,
                                            logprobs=2, stream=True))
    tokens, offsets = [], []
    for chunk in chunks:
        if chunk.choices and chunk.choices[0].logprobs:
            tokens += chunk.choices[0].logprobs.tokens
            offsets += chunk.choices[0].logprobs.text_offset
    assert tokens == whole.choices[0].logprobs.tokens
    assert offsets == whole.choices[0].logprobs.text_offset
    assert "".join(tokens) == whole.choices[0].text


def test_logprob_fields_are_range_checked(client):
    messages = [{"role": "user", "content": "Hi"}]
    with pytest.raises(openai.BadRequestError, match="top_logprobs"):
        client.chat.completions.create(model=MODEL, messages=messages, logprobs=True, top_logprobs=21)
    with pytest.raises(openai.BadRequestError, match="top_logprobs"):
        client.chat.completions.create(model=MODEL, messages=messages, top_logprobs=2)
    with pytest.raises(openai.BadRequestError, match="logprobs"):
        client.completions.create(model=MODEL, prompt="Hi", logprobs=6)
