"""Every code block of the user guide (docs/guide) runs, on the demo repository.

Each page's ``python`` blocks run in order in one namespace, with ``REPO`` (the
demo repository), ``OUT`` (a folder for pictures) and ``DATA`` (the repository's
``tests/data`` folder) set by the test: the pages assign these names visibly and the test
blanks those assignments out. Shell blocks run their ``vermilion`` commands
through `vermilion.cli.main`, in the same working folder (which holds
``vermilion-demo/``). Blocks marked ``<!-- norun: why -->`` are not run; see
guide_helpers for the markers.
"""

from __future__ import annotations

import ast
import re
import time
from pathlib import Path

import numpy as np
import pytest
from guide_helpers import (
    DATA,
    DOCS,
    GUIDE,
    PREDEFINED,
    SHELL,
    anchors,
    assigned_names,
    guide_pages,
    links,
    parse_blocks,
    python_source,
    shell_commands,
)

PAGES = guide_pages()


def _synchronous(args: list[str]) -> list[str]:
    return [*args, "--scheduler", "synchronous"]


def _absolute_file(args: list[str]) -> list[str]:
    return [*args[:-1], str(Path(args[-1]).resolve())]


#: Known bugs that a command of the guide meets (message -> the command changed to
#: avoid them). Where one shows, the command runs again so changed, the page goes
#: on, and the test is marked xfail naming the bug; once fixed, the test passes.
KNOWN_BUGS = {
    # deblend_patches on a dask.distributed cluster: Client.submit takes the
    # patch's workers= argument (processes per patch) as its own (worker names)
    "addresses should be strings or tuples": _synchronous,
    # ingest_model_data hands a relative path to butler.ingest, which takes it
    # as relative to the repository root
    "paths to ingest are assumed to be relative": _absolute_file,
}


def test_the_guide_has_its_pages():
    names = [p.name for p in PAGES]
    assert names == [
        "01-deblending-a-patch.md",
        "02-working-with-models.md",
        "03-repository.md",
        "04-formats.md",
        "05-rubin-data.md",
    ]


#: Pages that take more than about 5 s to run (the demo repository aside).
SLOW_PAGES = {"03-repository": "starts a local Dask cluster (about 4 s)"}


@pytest.mark.parametrize(
    "page",
    [
        pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in SLOW_PAGES else [])
        for p in PAGES
    ],
)
def test_page_runs(page, guide_env, monkeypatch, capsys):
    import matplotlib.pyplot as plt

    from vermilion.cli import main

    monkeypatch.chdir(guide_env["work"])
    namespace = {
        "__name__": "__guide__",
        "REPO": str(guide_env["repo"]),
        "OUT": guide_env["pictures"] / page.stem,
        "DATA": DATA,
    }
    known_bugs = []
    timings: list[tuple[str, float]] = []
    start = time.perf_counter()
    try:
        for block in parse_blocks(page):
            t_block = time.perf_counter()
            if block.marker == "file":
                (guide_env["work"] / block.marker_arg).write_text(block.code)
            elif not block.runs:
                continue
            elif block.lang == "python":
                exec(compile(python_source(block), str(page), "exec"), namespace)
            else:
                for command in shell_commands(block):
                    assert command[0] == "vermilion", f"{block.where}: not a vermilion command"
                    code = main(command[1:])
                    out = capsys.readouterr()
                    print(out.out, end="")
                    for message, change in KNOWN_BUGS.items():
                        if code != 0 and message in out.err:
                            known_bugs.append(f"{block.where}: {message}")
                            code = main(change(command[1:]))
                    assert code == 0, f"{block.where}: {' '.join(command)}\n{out.err}"
            if block.runs:
                timings.append((block.where, time.perf_counter() - t_block))
    finally:
        plt.close("all")
    for where, seconds in timings:
        print(f"{where}: {seconds:.2f} s")
    print(f"{page.name}: {time.perf_counter() - start:.1f} s")
    if known_bugs:
        pytest.xfail("known bugs: " + "; ".join(known_bugs))


def test_pictures_are_written(guide_env):
    """The pages that draw write their pictures into OUT (after test_page_runs)."""
    folder = guide_env["pictures"] / "02-working-with-models"
    if not folder.exists():
        pytest.skip("the page did not run in this session")
    names = {p.name for p in folder.glob("*.png") if p.stat().st_size > 2_000}
    assert {
        "reconstructedBlend.png",
        "reconstructedBlendDisplay.png",
        "reconstructedModels.png",
        "redistributedFlux.png",
        "extraSrcBlend.png",
    } <= names


def test_blocks_are_run_or_say_why_not():
    not_run = []
    for page in PAGES:
        for block in parse_blocks(page):
            if block.marker in ("norun", "fixture"):
                assert block.marker_arg, f"{block.where}: say why the block is not run"
                not_run.append(block)
            elif block.marker == "file":
                assert re.fullmatch(r"[\w.-]+", block.marker_arg), block.where
            elif block.lang in SHELL:
                for command in shell_commands(block):
                    assert command[0] == "vermilion", (
                        f"{block.where}: shell blocks that are run hold vermilion commands "
                        "only; mark others <!-- norun: why -->"
                    )
            elif block.lang == "":
                continue
            else:
                assert block.lang in ("python", "yaml", "toml", "sql"), block.where
    # only blocks that need a server or install packages, and the demo (the fixture);
    # pipetask and bps blocks run in test_guide_rubin.py
    not_run = [b for b in not_run if "test_guide_rubin.py" not in b.marker_arg]
    assert len(not_run) <= 6, [b.where for b in not_run]


def test_pages_assign_the_names_the_test_sets():
    """A page that uses REPO, OUT or DATA assigns it in its first python block."""
    for page in PAGES:
        blocks = [b for b in parse_blocks(page) if b.lang == "python" and b.runs]
        used = {name for b in blocks for name in PREDEFINED if re.search(rf"\b{name}\b", b.code)}
        assert used <= assigned_names(blocks[0]), f"{page.name}: assign {used} first"
        later = set().union(*(assigned_names(b) for b in blocks[1:])) if blocks[1:] else set()
        assert not later, f"{page.name}: {later} assigned after the first block"


def test_links_resolve():
    index = DOCS / "README.md"
    for page in [index, *PAGES]:
        for target in links(page):
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            assert dest.exists(), f"{page.name}: broken link {target}"
            if anchor and dest.suffix == ".md":
                assert anchor in anchors(dest), f"{page.name}: no heading for {target}"
    listed = {(DOCS / t.partition("#")[0]).resolve() for t in links(index)}
    assert set(PAGES) <= listed, "docs/README.md lists every page of the guide"


def _table_rows(page, first_cell_pattern: str):
    rows = []
    for line in page.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and re.fullmatch(first_cell_pattern, cells[0]):
            rows.append(cells)
    return rows


def test_config_table_gives_every_field_and_its_default():
    from vermilion.pipeline import DeblendConfig

    defaults = DeblendConfig().to_dict()
    rows = _table_rows(GUIDE / "01-deblending-a-patch.md", r"`[a-z][A-Za-z]+`")
    table = {
        cells[0].strip("`"): ast.literal_eval(cells[1].strip("`"))
        for cells in rows
        if cells[0].strip("`") in defaults or re.fullmatch(r"`[^`]*`", cells[1])
    }
    assert table == defaults


def test_catalog_columns_are_documented(guide_env):
    from lsst.daf.butler import Butler

    butler = Butler(guide_env["repo"], collections=["vermilion/deblend"])
    catalog = butler.get("deepCoadd_deblendedCatalog", skymap="demo", tract=0, patch=0)
    text = (GUIDE / "01-deblending-a-patch.md").read_text()
    documented = set(re.findall(r"`([a-z_A-Z]+(?:_<band>)?)`", text))
    bands = [str(b) for b in catalog.meta["bands"]]
    for name in list(documented):
        if name.endswith("_<band>"):
            documented |= {name.replace("<band>", b) for b in bands}
    missing = [c for c in catalog.colnames if c not in documented]
    assert not missing
    assert np.any(np.asarray(catalog["deblend_nChild"]) >= 4)
