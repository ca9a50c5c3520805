"""Fixtures of the Python package's tests: the models (loaded once per session), the
command line they are compared with, and a scratch folder.

The command line is the `tiller` the wheel installed beside this interpreter (built
from the same sources in the same build as the extension), else $TILLER_CLI, else
the repository's build/tiller. A missing model fails the run when
TILLER_REQUIRE_MODELS=1 (CI) and skips, saying so, otherwise."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tiller

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
MODELS = ["smollm2-135m-instruct", "gemma-3-270m"]


def cli_path() -> str:
    beside = Path(sys.executable).parent / "tiller"
    for candidate in (os.environ.get("TILLER_CLI"), beside, REPO / "build" / "tiller", shutil.which("tiller")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.fail("no tiller command line found (set TILLER_CLI)")


def model_path(name: str) -> str:
    path = tiller.models_dir() / f"{name}.gguf"
    if not path.is_file():
        message = f"model {name} is not in {tiller.models_dir()} (scripts/fetch-models.sh {name})"
        if os.environ.get("TILLER_REQUIRE_MODELS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return str(path)


_loaded = {}


def load(name: str, threads: int = 2) -> tiller.Model:
    key = (name, threads)
    if key not in _loaded:
        _loaded[key] = tiller.Model(model_path(name), threads=threads)
    return _loaded[key]


@pytest.fixture(scope="session")
def smol() -> tiller.Model:
    return load("smollm2-135m-instruct")


@pytest.fixture(scope="session", params=MODELS)
def any_model(request) -> tiller.Model:
    return load(request.param)


@pytest.fixture(scope="session")
def cli():
    path = cli_path()

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([path, *args], capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"tiller {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    return run
