"""The vector registry of `tiller serve` over plain HTTP (urllib, nothing to install):
a control vector the package writes is uploaded by name, listed with its blocks and
norms, steers a chat completion exactly as the same file put in the folder by hand
does, is refused when it does not fit the model, and is deleted."""

import json
import shutil
import urllib.error
import urllib.request

import numpy as np
import pytest

import tiller
from conftest import model_path
from server_support import running_server

MODEL = "smollm2-135m-instruct"
KEY = "registry-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = model_path(MODEL)
    folder = tmp_path_factory.mktemp("registry")
    with running_server(path, "-t", "2", "-c", "512", "--api-key", KEY, "--vector-dir", str(folder),
                        stop_timeout=20) as served:
        yield served.url, folder


def call(base, method, path, body=None, key=KEY):
    """(status, parsed JSON body) of one request; errors are answers too."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    elif body is not None:
        headers["Content-Type"] = "application/octet-stream"
    request = urllib.request.Request(base + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def chat(base, steering=None):
    body = {"messages": [{"role": "user", "content": "Tell me about your day."}], "temperature": 0,
            "max_tokens": 16}
    if steering:
        body["steering"] = {"control_vectors": [{"name": steering, "scale": 4.0}]}
    status, response = call(base, "POST", "/v1/chat/completions", body)
    assert status == 200, response
    return response["choices"][0]["message"]["content"]


def test_upload_list_steer_delete(server, tmp_path):
    base, folder = server
    width = tiller.Model(model_path(MODEL), threads=1).config["n_embd"]
    direction = np.where(np.arange(width) % 3 == 0, 1.0, -0.5).astype(np.float32)
    tiller.ControlVector({block: direction for block in range(10, 20)}).save(tmp_path / "push.gguf")
    data = (tmp_path / "push.gguf").read_bytes()

    assert call(base, "PUT", "/v1/vectors/push", data, key=None)[0] == 401
    status, vector = call(base, "PUT", "/v1/vectors/push", data)
    assert status == 201, vector
    assert vector["id"] == "push" and vector["object"] == "vector"
    assert vector["width"] == width
    assert vector["layers"] == list(range(10, 20))
    assert vector["norms"] == pytest.approx([float(np.linalg.norm(direction))] * 10, rel=1e-6)
    assert vector["bytes"] == len(data)
    assert call(base, "PUT", "/v1/vectors/push", data)[0] == 200  # replaced

    shutil.copy(tmp_path / "push.gguf", folder / "by-hand.gguf")
    status, listing = call(base, "GET", "/v1/vectors")
    assert status == 200
    assert [v["id"] for v in listing["data"]] == ["by-hand", "push"]

    plain, uploaded, by_hand = chat(base), chat(base, "push"), chat(base, "by-hand")
    assert uploaded != plain
    assert uploaded == by_hand

    # Another model's width: refused, and nothing is left behind.
    tiller.ControlVector({1: np.ones(16, dtype=np.float32)}).save(tmp_path / "narrow.gguf")
    status, error = call(base, "PUT", "/v1/vectors/narrow", (tmp_path / "narrow.gguf").read_bytes())
    assert status == 400 and "width 16" in error["error"]["message"], error
    assert sorted(p.name for p in folder.iterdir()) == ["by-hand.gguf", "push.gguf"]

    status, deleted = call(base, "DELETE", "/v1/vectors/push")
    assert status == 200 and deleted == {"id": "push", "object": "vector.deleted", "deleted": True}
    assert call(base, "GET", "/v1/vectors/push")[0] == 404
    status, error = call(base, "POST", "/v1/chat/completions",
                         {"messages": [{"role": "user", "content": "Hi"}],
                          "steering": {"control_vectors": [{"name": "push"}]}})
    assert status == 404 and "push" in error["error"]["message"]
