"""`tiller serve` spoken to through the official `openai` client (pinned in
python/constraints.txt): the client must work unchanged, greedy answers must equal
`tiller run`'s, steering travels in `extra_body`, and the server's errors must
become the client's exception classes."""

import re
import subprocess
import threading
import time
import urllib.request

import numpy as np
import openai
import pytest

import tiller
from conftest import cli_path, model_path

MODEL = "smollm2-135m-instruct"
KEY = "test-key"
CONTEXT = "512"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = model_path(MODEL)
    vectors = tmp_path_factory.mktemp("vectors")
    width = tiller.Model(path, threads=1).config["n_embd"]
    direction = np.where(np.arange(width) % 3 == 0, 1.0, -0.5).astype(np.float32)
    tiller.ControlVector({block: direction for block in range(10, 20)}).save(vectors / "push.gguf")
    process = subprocess.Popen(
        [cli_path(), "serve", "-m", path, "--host", "127.0.0.1", "--port", "0", "-t", "2", "-c", CONTEXT,
         "--parallel", "2", "--api-key", KEY, "--vector-dir", str(vectors)],
        stderr=subprocess.PIPE, text=True)
    lines = []
    port = None
    for line in process.stderr:  # the first lines say where it listens
        lines.append(line)
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if match:
            port = int(match.group(1))
            break
    # The server logs every request; its stderr is drained so that it never blocks.
    threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True).start()
    assert port, "".join(lines)
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health") as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        assert time.time() < deadline and process.poll() is None, "".join(lines)
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1"
    process.terminate()
    assert process.wait(timeout=20) == 0, "".join(lines)


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
