"""`tiller sweep` on SmolLM2 and scripts/sweep-heatmaps.py on its folder: one PNG per
measured metric, each a picture matplotlib can read back, the chosen cell in
sweep.json inside the grid."""

import json
import subprocess
import sys

import pytest

from conftest import REPO, model_path

matplotlib = pytest.importorskip("matplotlib")  # the [examples] extra
import matplotlib.image  # noqa: E402


def test_sweep_heatmaps_one_png_per_metric(cli, tmp_path):
    model = model_path("smollm2-135m-instruct")
    spec = {
        "likelihood": {
            "on_topic": ["The wedding was held in June and the bride wore lace.",
                         "Guests threw rice as the newlyweds left the chapel."],
            "off_topic": ["The stock market fell sharply on Tuesday.", "Photosynthesis turns light into sugar."],
        },
        "damage": {"texts": ["The train left the station at noon.", "She opened the window and looked out."]},
        "sweep": {"actadd": {"positive": " weddings", "negative": "", "blocks": [3, 6], "coefs": [2, 6]}},
    }
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    out = tmp_path / "out"
    result = cli("sweep", str(spec_path), "-m", model, "-t", "2", "--out", str(out))
    assert "scripts/sweep-heatmaps.py" in result.stderr
    sweep = json.loads((out / "sweep.json").read_text())
    assert len(sweep["cells"]) == 4
    assert sweep["chosen"] is None or (sweep["chosen"]["row"] < 2 and sweep["chosen"]["column"] < 2)

    pictures = tmp_path / "pictures"
    made = subprocess.run([sys.executable, str(REPO / "scripts" / "sweep-heatmaps.py"), str(out), "-o", str(pictures)],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    pngs = sorted(pictures.glob("*.png"))
    assert [p.name for p in pngs] == ["damage.png", "off_topic.png", "on_topic.png"]
    for png in pngs:
        image = matplotlib.image.imread(png)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert made.stdout.split() == [str(pictures / name) for name in ("on_topic.png", "off_topic.png", "damage.png")]
