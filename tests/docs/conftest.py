"""The demo repository the user guide runs on, made once per session."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from guide_helpers import guide_pages, parse_blocks, shell_commands


def demo_arguments():
    """The ``vermilion demo`` command of the guide's fixture block, parsed by the CLI's parser."""
    from vermilion.cli import build_parser

    fixtures = [b for page in guide_pages() for b in parse_blocks(page) if b.marker == "fixture"]
    assert len(fixtures) == 1, "the guide has one block marked <!-- fixture -->"
    (command,) = shell_commands(fixtures[0])
    assert command[:2] == ["vermilion", "demo"], command
    return build_parser().parse_args(command[1:])


@pytest.fixture(scope="session")
def guide_env(tmp_path_factory) -> dict:
    """A working folder holding the demo repository, a picture folder and the data folder.

    The repository is made by `vermilion.demo.run_demo` with the arguments of the
    guide's ``vermilion demo`` block, as that command would make it.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    from vermilion.demo import run_demo

    args = demo_arguments()
    work = tmp_path_factory.mktemp("guide")
    start = time.perf_counter()
    summary = run_demo(
        out=work / args.out,
        size=args.size,
        bands=args.bands,
        density=args.density,
        seed=args.seed,
        workers=args.workers,
        report=not args.no_report,
        progress=False,
        verbose=False,
    )
    seconds = time.perf_counter() - start
    from lsst.daf.butler import Butler

    butler = Butler(summary.repo, collections=["vermilion/deblend"])
    catalog = butler.get("deepCoadd_deblendedCatalog", skymap="demo", tract=0, patch=0)
    n_child = np.asarray(catalog["deblend_nChild"])
    # the guide's pages pick a parent with at least 4 children
    assert n_child.max() >= 4, f"the demo patch has no blend with several children: {n_child}"
    return {
        "work": work,
        "repo": Path(summary.repo),
        "pictures": tmp_path_factory.mktemp("guide-pictures"),
        "demo_seconds": seconds,
        "summary": summary,
    }
