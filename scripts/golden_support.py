"""Helpers the golden-making scripts share."""
import ctypes
import hashlib
import os

_SILENT_LOG = None  # the callback must outlive the call that installs it


def sha256_file(path):
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_script(name, file):
    """Imports a sibling script whose file name has dashes (make-forward-goldens.py, ...) as
    module `name`, so that the golden scripts share their functions rather than copy them."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def b64_array(values, dtype):
    """Base64 (standard alphabet, padded) of the values as raw bytes of a numpy dtype such as
    '<f4' (little-endian float32), in row-major order."""
    import base64

    import numpy as np

    return base64.b64encode(np.ascontiguousarray(values, dtype=dtype).tobytes()).decode("ascii")


def quiet_llama_cpp():
    """Imports llama.cpp's low-level bindings with its log lines silenced (they say
    nothing a golden needs) and with aborts that do not start gdb for a backtrace.
    Returns the llama_cpp.llama_cpp module."""
    global _SILENT_LOG
    os.environ.setdefault("GGML_NO_BACKTRACE", "1")
    import llama_cpp.llama_cpp as L
    if _SILENT_LOG is None:
        _SILENT_LOG = L.llama_log_callback(lambda level, text, user_data: None)
        L.llama_log_set(_SILENT_LOG, ctypes.c_void_p(0))
    return L
