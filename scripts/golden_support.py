"""Helpers the golden-making scripts share."""
import hashlib


def sha256_file(path):
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def b64_array(values, dtype):
    """Base64 (standard alphabet, padded) of the values as raw bytes of a numpy dtype such as
    '<f4' (little-endian float32), in row-major order."""
    import base64

    import numpy as np

    return base64.b64encode(np.ascontiguousarray(values, dtype=dtype).tobytes()).decode("ascii")
