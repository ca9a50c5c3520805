"""`tiller serve` for the Python tests: a process on a free loopback port, ready
when /health says so, stopped with SIGTERM (which must exit 0), and the control
vectors the tests steer with."""

import re
import subprocess
import threading
import time
import urllib.request
from contextlib import contextmanager

import numpy as np

import tiller
from conftest import cli_path


def write_push_vector(model_path, path, blocks=range(10, 20)):
    """One direction at the middle blocks, strong enough to move greedy text."""
    width = tiller.Model(model_path, threads=1).config["n_embd"]
    direction = np.where(np.arange(width) % 3 == 0, 1.0, -0.5).astype(np.float32)
    tiller.ControlVector({block: direction for block in blocks}).save(path)


class ServerProcess:
    def __init__(self, process, url, lines):
        self.process, self.url, self.lines = process, url, lines

    def log(self, last=None):
        return "".join(self.lines if last is None else self.lines[-last:])


@contextmanager
def running_server(model_path, *args, ready_timeout=60, stop_timeout=30):
    """`tiller serve -m MODEL --port 0 ARGS...`; yields a ServerProcess whose url is
    http://127.0.0.1:PORT (no /v1)."""
    process = subprocess.Popen([cli_path(), "serve", "-m", model_path, "--host", "127.0.0.1", "--port", "0", *args],
                               stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace")
    lines = []
    port = None
    for line in process.stderr:  # the first lines say where it listens
        lines.append(line)
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if match:
            port = int(match.group(1))
            break
    # The server logs every request; its stderr is drained so that it never blocks.
    # Logged paths are the clients' bytes (schemathesis sends any): not always UTF-8.
    threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True).start()
    try:
        assert port, "".join(lines)
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + ready_timeout
        while True:
            try:
                with urllib.request.urlopen(url + "/health") as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.time() < deadline and process.poll() is None, "".join(lines)
            time.sleep(0.05)
        yield ServerProcess(process, url, lines)
    finally:
        if process.poll() is None:
            process.terminate()
    assert process.wait(timeout=stop_timeout) == 0, "".join(lines[-40:])
