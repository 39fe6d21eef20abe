"""One damaged blend does not stop `vermilion report` (issue 19): it is listed as
unreadable with its error, every other blend is drawn."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from vermilion.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from pipeline_testdata import BANDS, simulate

SHAPE = (96, 96)


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    from vermilion.io import ModelData
    from vermilion.pipeline import deblend_patch
    from vermilion.repo import create_repo, ingest_arrays, open_repo

    root = tmp_path_factory.mktemp("report") / "repo"
    butler = create_repo(
        root, skymap="rep", bands=BANDS, tracts=1, patches=(1, 1), patch_shape=SHAPE
    )
    sim = simulate(seed=21, shape=SHAPE)
    ingest_arrays(butler, sim.images, sim.variance, sim.mask, sim.psfs, sim.bands, 0, 0)
    assert deblend_patch(root, 0, 0, workers=1).status == "done"
    butler = open_repo(root)
    (ref,) = butler.query_datasets(
        "deepCoadd_scarletModelData", collections="vermilion/deblend", explain=False
    )
    path = Path(butler.getURI(ref).ospath)
    with ModelData.open(path) as reader:
        table = reader.index()
        ids = reader.blend_ids()
    victim = int(table["id"][0])
    raw = bytearray(path.read_bytes())
    raw[int(table["offset"][0]) + 5] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(raw))
    return root, victim, ids


def test_report_skips_a_damaged_blend(damaged, tmp_path, capsys):
    root, victim, ids = damaged
    out = tmp_path / "report"
    argv = ["report", "--repo", str(root), "--tract", "0", "--patch", "0", "--out", str(out)]
    assert main([*argv, "-j", "1", "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out / 'index.html'}"
    rows = {int(r["id"]): r for r in json.loads((out / "report.json").read_text())["blends"]}
    assert sorted(rows) == sorted(ids)
    bad = rows[victim]
    assert "unreadable" in bad["flags"]
    assert bad["error"].startswith("ModelDataError: ")
    assert bad["error"].endswith(
        f"blend {victim}, field 'crc': checksum mismatch: the stored bytes are corrupted"
    )
    assert bad["scene"] is None
    good = [r for i, r in rows.items() if i != victim]
    assert good and all(r.get("error") is None and r["scene"] for r in good)
    assert (out / "blends" / f"{bad['stem']}.html").exists()
    assert "unreadable" in (out / "index.html").read_text()
