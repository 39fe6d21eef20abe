"""The static HTML patch report: files, rows, failures, and the page in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from display_helpers import make_blend

from vermilion.display import normalize_flags, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def patch_blends(n: int = 6, n_bands: int = 3):
    """``(id, blend, info)`` with known children counts, flags and chi^2."""
    rng = np.random.default_rng(5)
    items = []
    for i in range(n):
        k = 1 + i % 3
        centers = tuple((10 + 8 * j, 12 + 15 * j) for j in range(k))
        spectra = tuple(rng.uniform(1, 5, n_bands) for _ in range(k))
        blend = make_blend(n_bands, centers=centers, spectra=spectra, seed=i)
        info = {
            "n_children": k,
            "flags": ["edge"] if i % 2 else [],
            "chi2": float((i * 5) % 7) + 0.5,  # a known order, different from the ids'
            "it": 10 * i,
        }
        items.append((2**60 + i, blend, info))
    return items


class Exploding:
    """A blend whose model cannot be rendered."""

    sources = ()

    @property
    def observation(self):
        raise RuntimeError("corrupt blend")


def test_flags_are_normalized():
    assert normalize_flags(None) == []
    assert normalize_flags("edge") == ["edge"]
    assert normalize_flags(["b", "a", "b"]) == ["a", "b"]
    assert normalize_flags({"edge": True, "sat": False}) == ["edge"]
    assert normalize_flags(0b101) == ["bit0", "bit2"]
    with pytest.raises(ValueError):
        normalize_flags(-1)


@pytest.mark.parametrize("workers", [1, 2])
def test_report_files_and_rows(tmp_path, workers):
    items = patch_blends()
    index = write_report(iter(items), tmp_path / "rep", workers=workers, progress=False)
    assert index == tmp_path / "rep" / "index.html"
    page = index.read_text()
    cards = re.findall(r'<a class="blend" href="blends/(\d+)\.html"', page)
    assert cards == [str(i) for i, _, _ in items]  # one card per blend, in id order
    rows = json.loads((tmp_path / "rep" / "report.json").read_text())["blends"]
    assert [r["n_children"] for r in rows] == [1, 2, 3, 1, 2, 3]
    assert [r["flags"] for r in rows][:2] == [[], ["edge"]]
    assert rows[2]["extra"] == {"it": 20}
    for row in rows:
        stem = row["stem"]
        for suffix in ("_thumb.png", "_scene.png", "_sources.png", ".html"):
            assert (tmp_path / "rep" / "blends" / f"{stem}{suffix}").stat().st_size > 0
        detail = (tmp_path / "rep" / "blends" / f"{stem}.html").read_text()
        assert f'src="{stem}_scene.png"' in detail and f'src="{stem}_sources.png"' in detail
    # no temporary files left behind
    assert not [p for p in (tmp_path / "rep").rglob(".*")]


def test_report_computes_missing_info_and_survives_a_bad_blend(tmp_path):
    blend = make_blend(5)
    items = [(1, blend, None), ("odd/id 2", Exploding(), {"flags": "sat"})]
    write_report(items, tmp_path, workers=1, progress=False)
    rows = {r["id"]: r for r in json.loads((tmp_path / "report.json").read_text())["blends"]}
    good = rows["1"]
    assert good["n_children"] == 2 and good["error"] is None
    assert 0.5 < good["chi2"] < 2  # data = model + noise of the stated variance
    assert good["flux"] == pytest.approx(float(blend.get_model(convolve=True).data.sum()), 1e-4)
    bad = rows["odd/id 2"]
    assert bad["flags"] == ["render_error", "sat"] and "corrupt blend" in bad["error"]
    assert bad["stem"] == "odd_id_2"
    assert "corrupt blend" in (tmp_path / "blends" / "odd_id_2.html").read_text()


def test_report_rejects_malformed_items(tmp_path):
    with pytest.raises(ValueError, match="blend_id, blend, info"):
        write_report([make_blend(3)], tmp_path, workers=1, progress=False)


@pytest.mark.browser
def test_report_page_in_headless_chromium(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if CHROMIUM is None:
        pytest.skip("no chromium executable (apt-get install chromium)")
    items = patch_blends(6)
    index = write_report(items, tmp_path, workers=1, progress=False)
    chi2 = {str(i): info["chi2"] for i, _, info in items}
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            problems = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
            page.goto(index.as_uri())
            page.wait_for_load_state("load")

            def order():
                return page.eval_on_selector_all(
                    "#grid .blend:not([hidden])", "els => els.map(e => e.dataset.id)"
                )

            assert order() == [str(i) for i, _, _ in items]
            # every thumbnail is there and decoded
            widths = page.eval_on_selector_all(
                "#grid .blend img", "els => els.map(e => e.complete ? e.naturalWidth : 0)"
            )
            assert len(widths) == 6 and all(w > 0 for w in widths)
            # sorting by chi^2 reorders the cards
            page.select_option("#sort", "chi2")
            by_chi2 = sorted(chi2, key=chi2.get)
            assert order() == by_chi2 != [str(i) for i, _, _ in items]
            page.select_option("#order", "desc")
            assert order() == by_chi2[::-1]
            # filters: children and flags
            page.fill("#min-children", "3")
            assert len(order()) == 2
            page.fill("#min-children", "")
            page.select_option("#flag", "edge")
            assert len(order()) == 3
            assert "3 of 6" in page.inner_text("#count")
            # the state survives a reload (kept in the URL hash)
            page.reload()
            assert len(order()) == 3 and page.input_value("#sort") == "chi2"
            # a card opens the blend's page with its scene and sources pictures
            page.click("#grid .blend:not([hidden]) >> nth=0")
            page.wait_for_load_state("load")
            loaded = page.eval_on_selector_all(
                "img.pic", "els => els.map(e => e.complete && e.naturalWidth > 0)"
            )
            assert loaded == [True, True]
            assert problems == []
        finally:
            browser.close()


def test_unpicklable_blend_is_reported_not_fatal(tmp_path):
    class Local:  # defined in a function: cannot be pickled to a worker
        sources = ()

    items = [(1, make_blend(3), {}), (2, Local(), {"flags": ["x"], "it": 3})]
    write_report(items, tmp_path, workers=2, progress=False)
    rows = {r["id"]: r for r in json.loads((tmp_path / "report.json").read_text())["blends"]}
    assert rows["1"]["error"] is None and rows["1"]["thumb"]
    assert rows["2"]["flags"] == ["render_error", "x"] and rows["2"]["extra"] == {"it": 3}
    assert "pickle" in rows["2"]["error"].lower()
