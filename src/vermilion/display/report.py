"""A static, browsable HTML report of the blends of a patch.

`write_report` writes ``index.html`` (every blend as a thumbnail: observed,
rendered model, residual; sortable and filterable by number of children,
failure flags, chi^2 and flux) and, per blend, a page with its scene and
sources pictures. The report opens from disk in a browser: no server, no
network, no external script or style; the table data is in the page itself.
Pictures are rendered in worker processes.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np

from vermilion.core.files import atomic_write

__all__ = ["catalog_lines", "normalize_flags", "render_report_entry", "write_report"]

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def normalize_flags(flags: Any) -> list[str]:
    """Failure flags as a sorted list of names.

    Accepts ``None``, a name, an iterable of names, a mapping ``{name: bool}`` (the
    true ones are kept) or an integer bit mask (``bit3`` for bit 3).
    """
    if flags is None or flags is False:
        return []
    if isinstance(flags, str):
        return [flags] if flags else []
    if isinstance(flags, (bool, np.bool_)):
        return ["flagged"] if flags else []
    if isinstance(flags, (int, np.integer)):
        value = int(flags)
        if value < 0:
            raise ValueError(f"flag bit mask must be non-negative, got {value}")
        return [f"bit{b}" for b in range(value.bit_length()) if value >> b & 1]
    if isinstance(flags, Mapping):
        return sorted(str(k) for k, v in flags.items() if v)
    try:
        return sorted({str(f) for f in flags if f is not None and f != ""})
    except TypeError:
        raise TypeError(f"Cannot read flags of type {type(flags).__name__}: {flags!r}") from None


def _number(value) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


#: Boolean catalog columns that are not problems (not listed among a source's flags).
_NOT_FLAGS = ("deblend_converged", "deblend_isolatedParent")


def catalog_lines(columns: Mapping[str, Any], bands: Sequence[str]) -> list[str]:
    """A source's catalog entry as short lines: its id, flux per band (± error), flags.

    Parameters
    ----------
    columns
        The source's catalog columns (``{name: value}``): ``id``; the flux of band
        ``b`` from ``flux_<b>``, else ``deblend_reapportionedFlux_<b>``, else
        ``deblend_scarletFlux_<b>``; its error from ``flux_err_<b>`` when the catalog
        has one; flags are the true boolean columns (and ``deblend_failReason``).
    bands
        The bands, in order.

    Returns
    -------
    list of str
        E.g. ``["id 8796093022209", "g    123.4 ± 5.6", ..., "flags: deblend_zeroFlux"]``.
    """
    lines = [f"id {columns.get('id', '?')}"]
    for band in bands:
        flux = None
        for name in (f"flux_{band}", f"deblend_reapportionedFlux_{band}",
                     f"deblend_scarletFlux_{band}"):  # fmt: skip
            if name in columns:
                flux = _number(columns[name])
                break
        err = _number(columns.get(f"flux_err_{band}"))
        text = "n/a" if flux is None else f"{flux:.4g}"
        if err is not None:
            text += f" ± {err:.2g}"
        lines.append(f"{band:<4} {text}")
    flags = [
        name
        for name, value in columns.items()
        if isinstance(value, bool | np.bool_) and bool(value) and name not in _NOT_FLAGS
    ]
    reason = str(columns.get("deblend_failReason") or "").strip()
    if reason:
        flags.append(reason)
    lines.append("flags: " + (", ".join(flags) if flags else "none"))
    return lines


def _reduced_chi2(observation, rendered: np.ndarray) -> float | None:
    weights = np.asarray(observation.weights.data, dtype=np.float64)
    good = weights > 0
    n = int(good.sum())
    if n == 0:
        return None
    residual = np.asarray(observation.images.data, dtype=np.float64) - rendered
    return float(np.sum(weights[good] * residual[good] ** 2) / n)


def render_report_entry(
    blend_id,
    blend,
    info: Mapping | None,
    out_dir: str | os.PathLike,
    stem: str,
    channel_map: np.ndarray | None = None,
    max_sources: int | None = 20,
    dpi: float = 80,
) -> dict:
    """Render one blend's thumbnail, scene and sources pictures; return its index row.

    Missing ``n_children``, ``chi2`` (reduced chi^2 in the footprint) and ``flux`` (of
    the rendered model, summed over bands) are computed from the blend. A blend that
    fails to render gets the flag ``render_error`` and the error text in its row.
    """
    from .mosaic import scene_mosaic, sources_mosaic
    from .pictures import blend_thumbnail, save_figure, save_rgb
    from .views import default_norm, observation_has_data, on_box

    info = dict(info or {})
    out_dir = Path(out_dir)
    source_columns = info.pop("sources", None)
    row: dict[str, Any] = {
        "id": str(blend_id),
        "stem": stem,
        "n_children": info.pop("n_children", None),
        "flags": normalize_flags(info.pop("flags", None)),
        "chi2": _number(info.pop("chi2", None)),
        "flux": _number(info.pop("flux", None)),
        "extra": {str(k): _jsonable(v) for k, v in info.items()},
        "error": None,
        "thumb": None,
        "scene": None,
        "sources": None,
    }
    try:
        if row["n_children"] is None:
            row["n_children"] = sum(1 for s in blend.sources if not getattr(s, "is_null", False))
        row["n_children"] = int(row["n_children"])
        observation = blend.observation
        rendered = on_box(blend.get_model(convolve=True), observation.bbox)
        if row["chi2"] is None and observation_has_data(observation):
            row["chi2"] = _number(_reduced_chi2(observation, rendered))
        if row["flux"] is None:
            row["flux"] = _number(np.sum(rendered, dtype=np.float64))
        norm = default_norm(blend, channel_map)
        thumb = blend_thumbnail(blend, norm, channel_map, rendered=rendered)
        save_rgb(thumb, out_dir / "blends" / f"{stem}_thumb.png")
        row["thumb"] = [int(thumb.shape[1]), int(thumb.shape[0])]
        fig = scene_mosaic(blend, norm, channel_map, rendered=rendered, title=f"blend {blend_id}")
        save_figure(fig, out_dir / "blends" / f"{stem}_scene.png", dpi=dpi, fast=True)
        row["scene"] = True
        if row["n_children"] > 0 and any(not getattr(s, "is_null", False) for s in blend.sources):
            catalog = None
            if source_columns:
                bands = list(blend.observation.bands)
                catalog = {sid: catalog_lines(c, bands) for sid, c in source_columns.items()}
            fig = sources_mosaic(blend, norm, channel_map, max_sources=max_sources, catalog=catalog)
            save_figure(fig, out_dir / "blends" / f"{stem}_sources.png", dpi=dpi, fast=True)
            row["sources"] = True
    except Exception as exc:  # one bad blend must not stop the report
        row["error"] = f"{type(exc).__name__}: {exc}"
        if "render_error" not in row["flags"]:
            row["flags"] = sorted([*row["flags"], "render_error"])
        if row["n_children"] is None:
            row["n_children"] = 0
    return row


def _error_row(task, exc: BaseException, flag: str = "render_error") -> dict:
    blend_id, _, info, _, stem = task[:5]
    info = dict(info or {})
    n = info.get("n_children")
    return {
        "id": str(blend_id),
        "stem": stem,
        "n_children": int(n) if isinstance(n, (int, np.integer)) else 0,
        "flags": sorted({*normalize_flags(info.get("flags")), flag}),
        "chi2": _number(info.get("chi2")),
        "flux": _number(info.get("flux")),
        "extra": {
            str(k): _jsonable(v)
            for k, v in info.items()
            if k not in ("n_children", "flags", "chi2", "flux")
        },
        "error": f"{type(exc).__name__}: {exc}",
        "thumb": None,
        "scene": None,
        "sources": None,
    }


def _jsonable(value):
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _number(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _render_task(args) -> dict:
    if isinstance(args[1], BaseException):  # a blend that could not be read: no pictures
        return _error_row(args, args[1], "unreadable")
    return render_report_entry(*args)


def write_report(
    blends: Iterable[tuple[Any, Any, Mapping | None]],
    out_dir: str | os.PathLike,
    workers: int | None = None,
    title: str = "vermilion report",
    channel_map: np.ndarray | None = None,
    max_sources: int | None = 20,
    dpi: float = 80,
    progress: bool = True,
    mp_context: str | None = None,
) -> Path:
    """Write a static HTML report of many blends (e.g. one patch) into ``out_dir``.

    Parameters
    ----------
    blends
        Iterable of ``(blend_id, blend, info)``; ``info`` is a dict with any of
        ``n_children``, ``flags`` (names, ``{name: bool}`` or a bit mask), ``chi2``
        and ``flux``; other keys are shown on the blend's page. Missing values are
        computed from the blend. Consumed lazily. A blend given as an exception (it
        could not be read) is listed with the flag ``unreadable`` and its error.
    out_dir
        Folder for ``index.html``, ``report.json`` and ``blends/`` (created).
    workers
        Processes rendering pictures in parallel (default: CPU count); 1 renders in
        this process. Blends are pickled to the workers.
    title
        Page title.
    channel_map
        ``(3, bands)`` band-to-RGB matrix for all pictures.
    max_sources
        Most source rows in a sources picture.
    dpi
        Resolution of the scene and sources pictures.
    progress
        Show a tqdm progress bar.
    mp_context
        Start method of the worker processes (``"fork"``, ``"spawn"``,
        ``"forkserver"``); default: Python's.

    Returns
    -------
    Path of ``index.html``.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    (out_dir / "blends").mkdir(parents=True, exist_ok=True)
    if workers is None:
        workers = os.cpu_count() or 1
    workers = max(1, int(workers))
    total = len(blends) if hasattr(blends, "__len__") else None
    bar = tqdm(total=total, disable=not progress, unit="blend", desc="report")
    stems: set[str] = set()
    rows: list[dict] = []

    def tasks():
        for n, item in enumerate(blends):
            try:
                blend_id, blend, info = item
            except (TypeError, ValueError):
                raise ValueError(
                    f"item {n} of blends must be (blend_id, blend, info), got {item!r:.80}"
                ) from None
            stem = _SAFE.sub("_", str(blend_id))[:80] or "blend"
            if stem in stems:
                stem = f"{stem}-{n}"
            stems.add(stem)
            yield (blend_id, blend, info, out_dir, stem, channel_map, max_sources, dpi)

    def collect(fut, task) -> None:
        try:
            rows.append(fut.result())
        except BrokenProcessPool:
            raise
        except Exception as exc:  # e.g. a blend that cannot be pickled to a worker
            rows.append(_error_row(task, exc))
        bar.update()

    try:
        if workers == 1:
            for task in tasks():
                rows.append(_render_task(task))
                bar.update()
        else:
            import multiprocessing

            context = multiprocessing.get_context(mp_context) if mp_context else None
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                pending: dict = {}
                limit = 4 * workers  # bounded: blends are consumed lazily
                for task in tasks():
                    pending[pool.submit(_render_task, task)] = task
                    if len(pending) >= limit:
                        done, _ = wait(pending, return_when=FIRST_COMPLETED)
                        for fut in done:
                            collect(fut, pending.pop(fut))
                for fut in list(pending):
                    collect(fut, pending.pop(fut))
    finally:
        bar.close()
    return _write_pages(rows, out_dir, title)


# ---------------------------------------------------------------------------------------------
# HTML


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _id_key(row: dict):
    s = row["id"]
    try:
        return (0, int(s), s)
    except ValueError:
        return (1, 0, s)


def _write_pages(rows: list[dict], out_dir: Path, title: str) -> Path:
    rows = sorted(rows, key=_id_key)
    for rank, row in enumerate(rows):
        row["rank"] = rank
    all_flags = sorted({f for row in rows for f in row["flags"]})
    for i, row in enumerate(rows):
        prev_row = rows[i - 1] if i > 0 else None
        next_row = rows[i + 1] if i + 1 < len(rows) else None
        page = _blend_page(row, prev_row, next_row, title)
        _write_text(out_dir / "blends" / f"{row['stem']}.html", page)
    index = out_dir / "index.html"
    _write_text(index, _index_page(rows, all_flags, title))
    summary = json.dumps({"title": title, "blends": rows}, indent=1)
    _write_text(out_dir / "report.json", summary)
    return index


def _write_text(path: Path, text: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(path, write)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;
background:#15171a;color:#e8e8e8}
header{position:sticky;top:0;background:#1f2227;padding:8px 14px;border-bottom:1px solid #333;
z-index:2}
h1{font-size:17px;margin:0 0 6px 0}
#controls{display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center;font-size:13px}
#controls label{white-space:nowrap}
input[type=number]{width:6em}
input,select,button{background:#2b2f36;color:#eee;border:1px solid #555;border-radius:3px;
padding:2px 4px;font-size:13px}
#grid{display:flex;flex-wrap:wrap;gap:10px;padding:12px}
.blend{display:flex;flex-direction:column;background:#23262c;border:1px solid #333;
border-radius:4px;padding:5px;text-decoration:none;color:inherit;max-width:520px}
.blend:hover{border-color:#d04a32}
.blend img{height:96px;width:auto;image-rendering:pixelated;background:#000}
.meta{font-size:12px;margin-top:4px;display:flex;gap:8px;flex-wrap:wrap}
.flag{background:#8a2a1c;color:#fff;border-radius:3px;padding:0 4px;font-size:11px}
.err{color:#ff9a80;font-size:11px}
#count{color:#aaa}
a{color:#ff8c6b}
table.info{border-collapse:collapse;font-size:13px;margin:8px 0}
table.info td{border:1px solid #444;padding:2px 8px}
.pic{max-width:100%;background:#fff;margin:6px 0}
nav{display:flex;gap:14px;font-size:14px}
main.page{padding:12px 16px}
"""

_JS = r"""
(function () {
  "use strict";
  const grid = document.getElementById("grid");
  const cards = Array.from(grid.querySelectorAll(".blend"));
  const $ = (id) => document.getElementById(id);
  const controls = ["sort", "order", "min-children", "max-children", "min-chi2", "max-chi2",
                    "min-flux", "max-flux", "flag", "search"];
  function num(card, key) {
    const v = card.dataset[key];
    return v === undefined || v === "" ? NaN : Number(v);
  }
  function bound(id) {
    const v = $(id).value;
    return v === "" ? NaN : Number(v);
  }
  function apply() {
    const key = $("sort").value;
    const sign = $("order").value === "desc" ? -1 : 1;
    const sorted = cards.slice().sort(function (a, b) {
      const x = num(a, key), y = num(b, key);
      const xn = Number.isNaN(x), yn = Number.isNaN(y);
      if (xn !== yn) { return xn ? 1 : -1; }  // missing values last
      if (!xn && x !== y) { return sign * (x - y); }
      return num(a, "rank") - num(b, "rank");
    });
    const ranges = [["nChildren", "min-children", "max-children"], ["chi2", "min-chi2", "max-chi2"],
                    ["flux", "min-flux", "max-flux"]];
    const flag = $("flag").value;
    const search = $("search").value.trim();
    let shown = 0;
    const frag = document.createDocumentFragment();
    for (const card of sorted) {
      let ok = true;
      for (const [k, lo, hi] of ranges) {
        const v = num(card, k), l = bound(lo), h = bound(hi);
        if ((!Number.isNaN(l) && !(v >= l)) || (!Number.isNaN(h) && !(v <= h))) { ok = false; }
      }
      const flags = card.dataset.flags ? card.dataset.flags.split(" ") : [];
      if (flag === "__none__" && flags.length) { ok = false; }
      else if (flag === "__any__" && !flags.length) { ok = false; }
      else if (flag && flag.indexOf("__") !== 0 && flags.indexOf(flag) < 0) { ok = false; }
      if (search && card.dataset.id.indexOf(search) < 0) { ok = false; }
      card.hidden = !ok;
      if (ok) { shown += 1; }
      frag.appendChild(card);
    }
    grid.appendChild(frag);
    $("count").textContent = shown + " of " + cards.length + " blends shown";
    const state = new URLSearchParams();
    for (const id of controls) { if ($(id).value !== "") { state.set(id, $(id).value); } }
    try { history.replaceState(null, "", "#" + state.toString()); } catch (err) { /* ignore */ }
  }
  const saved = new URLSearchParams(location.hash.slice(1));
  for (const id of controls) {
    if (saved.has(id)) { $(id).value = saved.get(id); }
    $(id).addEventListener("input", apply);
    $(id).addEventListener("change", apply);
  }
  $("reset").addEventListener("click", function () {
    for (const id of controls) { $(id).value = ""; }
    $("sort").value = "rank"; $("order").value = "asc";
    apply();
  });
  apply();
})();
"""


def _attr(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return html.escape(str(value), quote=True)


def _index_page(rows: list[dict], all_flags: list[str], title: str) -> str:
    e = html.escape
    cards = []
    for row in rows:
        stem = row["stem"]
        flags = " ".join(row["flags"])
        flag_html = "".join(f'<span class="flag">{e(f)}</span>' for f in row["flags"])
        if row["thumb"]:
            w, h = row["thumb"]
            img = (
                f'<img src="blends/{e(stem)}_thumb.png" width="{w}" height="{h}" '
                f'alt="blend {e(row["id"])}: observed, model, residual" loading="lazy">'
            )
        else:
            img = f'<span class="err">{e(row["error"] or "no picture")}</span>'
        cards.append(
            f'<a class="blend" href="blends/{e(stem)}.html" data-id="{_attr(row["id"])}" '
            f'data-rank="{row["rank"]}" data-n-children="{_attr(row["n_children"])}" '
            f'data-chi2="{_attr(row["chi2"])}" data-flux="{_attr(row["flux"])}" '
            f'data-n-flags="{len(row["flags"])}" data-flags="{_attr(flags)}">'
            f'{img}<span class="meta"><b>{e(row["id"])}</b>'
            f"<span>n={_fmt(row['n_children'])}</span>"
            f"<span>χ²={_fmt(row['chi2'])}</span><span>flux={_fmt(row['flux'])}</span>"
            f"{flag_html}</span></a>"
        )
    flag_options = "".join(f'<option value="{_attr(f)}">{e(f)}</option>' for f in all_flags)
    n_flagged = sum(1 for r in rows if r["flags"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title><style>{_CSS}</style></head>
<body><header><h1>{e(title)}</h1>
<form id="controls" onsubmit="return false">
<label>sort <select id="sort">
<option value="rank">id</option><option value="nChildren">children</option>
<option value="chi2">χ²</option><option value="flux">flux</option>
<option value="nFlags">flags</option></select></label>
<select id="order" aria-label="order"><option value="asc">ascending</option>
<option value="desc">descending</option></select>
<label>children <input id="min-children" type="number" min="0" step="1" placeholder="min">
&ndash; <input id="max-children" type="number" min="0" step="1" placeholder="max"></label>
<label>χ² <input id="min-chi2" type="number" step="any" placeholder="min">
&ndash; <input id="max-chi2" type="number" step="any" placeholder="max"></label>
<label>flux <input id="min-flux" type="number" step="any" placeholder="min">
&ndash; <input id="max-flux" type="number" step="any" placeholder="max"></label>
<label>flags <select id="flag"><option value="">all blends</option>
<option value="__any__">flagged ({n_flagged})</option><option value="__none__">not flagged</option>
{flag_options}</select></label>
<label>id <input id="search" type="search" placeholder="contains"></label>
<button id="reset" type="button">reset</button>
<span id="count">{len(rows)} blends</span>
</form></header>
<main id="grid">
{chr(10).join(cards)}
</main>
<script>{_JS}</script>
</body></html>
"""


def _blend_page(row: dict, prev_row: dict | None, next_row: dict | None, title: str) -> str:
    e = html.escape
    stem = row["stem"]
    nav = ['<a href="../index.html">index</a>']
    if prev_row is not None:
        nav.append(f'<a href="{e(prev_row["stem"])}.html">← {e(prev_row["id"])}</a>')
    if next_row is not None:
        nav.append(f'<a href="{e(next_row["stem"])}.html">{e(next_row["id"])} →</a>')
    items = [
        ("blend id", row["id"]),
        ("children", _fmt(row["n_children"])),
        ("χ² (reduced)", _fmt(row["chi2"])),
        ("flux", _fmt(row["flux"])),
        ("flags", ", ".join(row["flags"]) or "none"),
    ]
    items += [(k, _fmt(v)) for k, v in row["extra"].items()]
    if row["error"]:
        items.append(("render error", row["error"]))
    table = "".join(f"<tr><td>{e(str(k))}</td><td>{e(str(v))}</td></tr>" for k, v in items)
    pics = []
    if row["scene"]:
        pics.append(
            f'<h2>Scene</h2><a href="{e(stem)}_scene.png"><img class="pic" '
            f'src="{e(stem)}_scene.png" alt="scene of blend {e(row["id"])}"></a>'
        )
    if row["sources"]:
        pics.append(
            f'<h2>Sources</h2><a href="{e(stem)}_sources.png"><img class="pic" '
            f'src="{e(stem)}_sources.png" alt="sources of blend {e(row["id"])}"></a>'
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>blend {e(row["id"])} | {e(title)}</title><style>{_CSS}</style></head>
<body><main class="page"><nav>{" ".join(nav)}</nav>
<h1>blend {e(row["id"])}</h1>
<table class="info">{table}</table>
{"".join(pics)}
</main></body></html>
"""
