"""HTML of the pages. Plain functions from data to a string; every stored or requested string goes
through :func:`~service.ui.svg.esc` (ids, classes, versions, filter values, metadata), numbers are
formatted here. No script anywhere: the pages are served with a Content-Security-Policy that allows
none (``service.ui.routes``), so even a missed escape could not run code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from service.ui.charts import light_curve_svg, probability_svg, version_changes
from service.ui.index import ListingPage
from service.ui.queries import ModelView, ObjectPageData
from service.ui.svg import esc

__all__ = [
    "ListingFilter",
    "error_page",
    "listing_page",
    "login_page",
    "model_page",
    "object_page",
    "object_url",
]


def object_url(object_id: str) -> str:
    """The object page's path (ids use only URL-safe characters, but quoting keeps that a non-issue)."""
    return "/ui/objects/" + quote(object_id, safe=":+-._")


def _prob(p: float | None) -> str:
    return "–" if p is None or not math.isfinite(p) else f"{p:.3f}"


def _time(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError):
        return str(iso)


def _layout(title: str, body: str, active: str = "") -> str:
    def nav(href: str, name: str, key: str) -> str:
        current = ' aria-current="page"' if key == active else ""
        return f'<a href="{href}"{current}>{name}</a>'

    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · goto-classifier</title>"
        '<link rel="icon" href="/ui/static/favicon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="/ui/static/ui.css"></head><body>'
        '<header><span class="brand">goto-classifier</span><nav>'
        f"{nav('/ui', 'Objects', 'objects')}{nav('/ui/model', 'Model', 'model')}</nav></header>"
        f"<main>{body}</main></body></html>"
    )


# ------------------------------------------------------------------------------------------ listing


class ListingFilter:
    """The listing's query: predicted class, "class >= p", page and page size (already validated)."""

    def __init__(self, predicted_class: str | None = None, min_class: str | None = None,
                 min_p: float | None = None, page: int = 1, per_page: int = 50) -> None:
        self.predicted_class = predicted_class
        self.min_class = min_class
        self.min_p = min_p
        self.page = page
        self.per_page = per_page

    @property
    def min_probability(self) -> tuple[str, float] | None:
        if self.min_class is None or self.min_p is None:
            return None
        return (self.min_class, self.min_p)

    def query(self, **changes: Any) -> str:
        """This filter's query string with ``changes`` applied (pagination and count links)."""
        params = {"class": self.predicted_class, "min_class": self.min_class,
                  "min_p": None if self.min_p is None else f"{self.min_p:g}", "page": self.page,
                  "per_page": self.per_page}
        params.update(changes)
        defaults = {"page": 1, "per_page": 50}
        kept = {k: v for k, v in params.items() if v is not None and v != "" and defaults.get(k) != v}
        return "?" + urlencode(kept) if kept else ""


def _options(names: Sequence[str], selected: str | None, blank: str) -> str:
    out = [f'<option value="">{blank}</option>']
    for n in names:
        sel = " selected" if n == selected else ""
        out.append(f'<option value="{esc(n)}"{sel}>{esc(n)}</option>')
    return "".join(out)


def _filter_form(classes: Sequence[str], f: ListingFilter) -> str:
    min_p = "" if f.min_p is None else f"{f.min_p:g}"
    return (
        '<form class="filters" method="get" action="/ui">'
        '<label>predicted class <select name="class">'
        f'{_options(classes, f.predicted_class, "any")}</select></label>'
        '<label>probability of <select name="min_class">'
        f'{_options(classes, f.min_class, "–")}</select></label>'
        f'<label>at least <input name="min_p" type="number" min="0" max="1" step="0.05" value="{esc(min_p)}"'
        ' inputmode="decimal" size="5"></label>'
        '<button type="submit">Filter</button> <a href="/ui">clear</a></form>'
    )


def _counts(page: ListingPage, f: ListingFilter) -> str:
    parts = [f'<a href="/ui{esc(f.query(**{"class": None, "page": 1}))}">all <b>{page.total}</b></a>']
    for i, (name, n) in enumerate(page.counts.items()):
        link = esc(f.query(**{"class": name, "page": 1}))
        parts.append(f'<a class="count c{i}" href="/ui{link}">{esc(name)} <b>{n}</b></a>')
    return f'<p class="counts" id="class-counts">{" · ".join(parts)}</p>'


def listing_page(page: ListingPage, classes: Sequence[str], f: ListingFilter) -> str:
    """The latest classified objects, newest first, one page of them."""
    head = "".join(f"<th>P({esc(c)})</th>" for c in classes)
    rows = []
    for r in page.rows:
        cls_index = classes.index(r.predicted_class) if r.predicted_class in classes else -1
        probs = "".join(
            f'<td class="num{" best" if c == r.predicted_class else ""}">{_prob(r.probabilities.get(c))}</td>'
            for c in classes
        )
        rows.append(
            f'<tr class="object-row"><td><a href="{esc(object_url(r.object_id))}">{esc(r.object_id)}</a></td>'
            f'<td><span class="tag c{cls_index}">{esc(r.predicted_class)}</span></td>{probs}'
            f'<td class="num">{r.n_detections}</td><td>{esc(_time(r.updated_at))}</td>'
            f"<td><code>{esc(r.model_version)}</code></td></tr>"
        )
    shown_from = (f.page - 1) * f.per_page + 1
    shown_to = shown_from + len(page.rows) - 1
    described = []
    if f.predicted_class:
        described.append(f"predicted {esc(f.predicted_class)}")
    if f.min_probability:
        described.append(f"P({esc(f.min_class)}) ≥ {esc(f'{f.min_p:g}')}")
    what = f" ({', '.join(described)})" if described else ""
    status = (f"{page.matching} objects{what}; showing {shown_from}–{shown_to}, newest first"
              if page.rows else f"no classified objects{what} here yet")
    pager = []
    if f.page > 1:
        pager.append(f'<a rel="prev" href="/ui{esc(f.query(page=f.page - 1))}">← newer</a>')
    if f.page * f.per_page < page.matching:
        pager.append(f'<a rel="next" href="/ui{esc(f.query(page=f.page + 1))}">older →</a>')
    table = (
        '<div class="scroll"><table id="objects"><thead><tr><th>object</th><th>class</th>'
        f"{head}<th>detections</th><th>last update</th><th>model version</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
    body = (
        "<h1>Latest classified objects</h1>"
        f"{_counts(page, f)}{_filter_form(classes, f)}"
        f'<p class="status" id="listing-status">{status}</p>{table}'
        f'<nav class="pager">{" ".join(pager)}</nav>'
    )
    return _layout("Objects", body, "objects")


# -------------------------------------------------------------------------------------- object page


def _classification(data: ObjectPageData) -> str:
    st = data.state
    bars = []
    for i, c in enumerate(data.class_names):
        p = st.probabilities.get(c)
        value = 0.0 if p is None else p
        bars.append(
            f'<tr class="{"best" if c == st.predicted_class else ""}"><th>{esc(c)}</th>'
            f'<td class="num">{_prob(p)}</td><td class="bar"><meter class="c{i}" min="0" max="1" '
            f'value="{value:.4f}">{_prob(p)}</meter></td></tr>'
        )
    return (
        '<section class="card" id="classification"><h2>Current classification</h2>'
        f'<p class="verdict"><span class="tag c{_index(data.class_names, st.predicted_class)}">'
        f"{esc(st.predicted_class)}</span></p>"
        f'<table class="probs">{"".join(bars)}</table>'
        f"<dl><dt>detections</dt><dd>{len(data.light_curve)} stored, {len(data.used_ids)} in the model input "
        f"(its first {data.n_steps})</dd>"
        f"<dt>model version</dt><dd><code>{esc(st.model_version)}</code></dd>"
        f"<dt>last update</dt><dd>{esc(_time(st.updated_at))} (revision {st.revision})</dd>"
        f"<dt>after detection</dt><dd><code>{esc(st.detection_id)}</code> (MJD {st.mjd:.5f})</dd></dl>"
        "</section>"
    )


def _index(names: Sequence[str], name: str) -> int:
    return names.index(name) if name in names else -1


_HOST_SOURCES = {
    "request": "given with the detection",
    "catalogue": "nearest galaxy in the configured catalogue",
    "catalogue_no_match": "no catalogue galaxy close enough: the model sees the dummy distance",
    "unknown": "no catalogue configured and none given: the model sees the dummy distance",
}


def _context(data: ObjectPageData) -> str:
    ctx = data.context
    if ctx is None:
        return ('<section class="card" id="context"><h2>Context</h2><p>No context: the model of this '
                "classification does not use it, or no detection had a position.</p></section>")
    sep = "none" if ctx.host_sep_arcsec is None else f"{ctx.host_sep_arcsec:.2f}″"
    source = _HOST_SOURCES.get(ctx.host_source, ctx.host_source)
    return (
        '<section class="card" id="context"><h2>Context features</h2><dl>'
        f"<dt>galactic l</dt><dd>{ctx.gal_l_deg:.4f}°</dd><dt>galactic b</dt><dd>{ctx.gal_b_deg:.4f}°</dd>"
        f'<dt>host separation</dt><dd id="host-sep">{sep}</dd>'
        f'<dt>host from</dt><dd id="host-source"><code>{esc(ctx.host_source)}</code>: {esc(source)} '
        f"(beyond {ctx.max_host_sep_arcsec:g}″ or none, the model reads {ctx.dummy_host_sep_arcsec:g}″)</dd>"
        f"<dt>position</dt><dd>RA {ctx.ra:.6f}°, Dec {ctx.dec:.6f}°</dd>"
        f"<dt>from detection</dt><dd><code>{esc(ctx.source_detection_id)}</code></dd></dl></section>"
    )


def _legend(names: Sequence[str]) -> str:
    items = "".join(f'<span class="key c{i}">{esc(n)}</span>' for i, n in enumerate(names))
    return f'<p class="legend">{items}<span class="key version">model version change</span></p>'


def _versions(history: Sequence[Mapping[str, Any]]) -> str:
    if not history:
        return ""
    starts = [0, *version_changes(history)]
    spans = []
    for k, i in enumerate(starts):
        end = (starts[k + 1] if k + 1 < len(starts) else len(history)) - 1
        version = esc(history[i].get("model_version", "?"))
        spans.append(f"<li><code>{version}</code>: updates {i + 1}–{end + 1}</li>")
    return f'<ul class="versions" id="model-versions">{"".join(spans)}</ul>'


def _history_table(history: Sequence[Mapping[str, Any]], names: Sequence[str]) -> str:
    head = "".join(f"<th>P({esc(c)})</th>" for c in names)
    rows = []
    for k, r in enumerate(history, start=1):
        probs = r.get("probabilities", {})
        cells = "".join(f'<td class="num">{_prob(probs.get(c))}</td>' for c in names)
        rows.append(
            f'<tr><td class="num">{k}</td><td class="num">{esc(r.get("n_detections", ""))}</td>'
            f'<td class="num">{float(r.get("mjd", float("nan"))):.5f}</td>{cells}'
            f'<td>{esc(r.get("predicted_class", ""))}</td><td>{esc(r.get("mode", ""))}</td>'
            f'<td><code>{esc(r.get("model_version", ""))}</code></td>'
            f'<td>{esc(_time(r.get("time", "")))}</td></tr>'
        )
    return (
        f'<details><summary>History table ({len(history)} rows)</summary><div class="scroll">'
        '<table id="history"><thead><tr><th>#</th><th>detections</th><th>MJD</th>'
        f"{head}<th>class</th><th>mode</th><th>model version</th><th>time</th></tr></thead>"
        f'<tbody>{"".join(rows)}</tbody></table></div></details>'
    )


def object_page(data: ObjectPageData) -> str:
    """Light curve, probability history (by detection number and by time), context, classification."""
    oid = data.object_id
    api = quote(oid, safe=":+-._")
    beyond = len(data.light_curve) - len(data.used_ids)
    lc_note = (f"Filled: the {len(data.used_ids)} detections the classification was computed from (the "
               f"model reads its first {data.n_steps}); hollow: {beyond} stored beyond them."
               if beyond > 0 else f"All {len(data.light_curve)} detections are in the model input "
               f"(it reads the first {data.n_steps}).")
    body = (
        f'<h1 class="object-id">{esc(oid)}</h1>'
        f'<p class="links">JSON: <a href="/objects/{esc(api)}">/objects/{esc(oid)}</a> · '
        f'<a href="/objects/{esc(api)}/probabilities">/objects/{esc(oid)}/probabilities</a> · '
        '<a href="/model">/model</a></p>'
        f'<div class="grid">{_classification(data)}{_context(data)}</div>'
        f'<section class="card wide"><h2>Light curve</h2>'
        f"{light_curve_svg(data.light_curve, data.used_ids, data.n_steps)}"
        f'<p class="legend"><span class="key used">in the model input</span>'
        f'<span class="key beyond">beyond its first {data.n_steps}</span></p>'
        f'<p class="note">{lc_note}</p></section>'
        f'<section class="card wide"><h2>Classification history</h2>'
        f'<p class="note">One point per classification update ({len(data.history)}), each stamped with the '
        "model version that made it.</p>"
        f"{_legend(data.class_names)}"
        f'{probability_svg(data.history, data.class_names, "n_detections", "prob-by-detection")}'
        f'{probability_svg(data.history, data.class_names, "mjd", "prob-by-time")}'
        f"{_versions(data.history)}{_history_table(data.history, data.class_names)}</section>"
    )
    return _layout(oid, body)


# --------------------------------------------------------------------------------------- model card


def _value(value: Any, depth: int = 0) -> str:
    """Any JSON value as nested definition lists (metadata is open-ended)."""
    if isinstance(value, Mapping):
        if not value:
            return "–"
        items = "".join(f"<dt>{esc(k)}</dt><dd>{_value(v, depth + 1)}</dd>" for k, v in value.items())
        return f'<dl class="kv">{items}</dl>'
    if isinstance(value, list | tuple):
        if all(not isinstance(v, Mapping | list | tuple) for v in value):
            return esc(", ".join(_scalar(v) for v in value)) if value else "–"
        return "<ol>" + "".join(f"<li>{_value(v, depth + 1)}</li>" for v in value) + "</ol>"
    return esc(_scalar(value))


def _scalar(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.6g}"
    return str(v)


def _metrics_table(metrics: Mapping[str, Any], classes: Sequence[str]) -> str:
    rows = []
    for key, v in metrics.items():
        rows.append(f"<tr><th>{esc(key)}</th><td>{_value(v)}</td></tr>")
    return f'<table class="kv-table" id="metrics">{"".join(rows)}</table>'


def model_page(view: ModelView) -> str:
    m = view.metadata
    classes = m.get("class_names", [])
    thresholds = "".join(
        f'<tr><th>{esc(c)}</th><td class="num">{_scalar(t)}</td></tr>'
        for c, t in m.get("thresholds", {}).items()
    )
    data = dict(m.get("data", {}))
    simulator = data.pop("simulator", None)
    training = dict(m.get("training", {}))
    departures = training.pop("departures_from_paper", [])
    plots = "".join(
        f'<figure><img src="/ui/model/report/{esc(quote(name))}" alt="{esc(name)}" loading="lazy">'
        f"<figcaption>{esc(name)}</figcaption></figure>"
        for name in view.report_plots
    )
    body = (
        "<h1>Model card</h1>"
        f'<p class="verdict"><code id="model-version">{esc(m.get("model_version", ""))}</code></p>'
        '<p class="links">JSON: <a href="/model">/model</a></p>'
        '<div class="grid"><section class="card"><h2>Model</h2><dl>'
        f"<dt>name</dt><dd>{esc(m.get('model_name', ''))}</dd>"
        f"<dt>created</dt><dd>{esc(m.get('created_at', ''))}</dd>"
        f"<dt>recurrent layer</dt><dd>{esc(m.get('rnn_type', ''))}</dd>"
        f"<dt>classes</dt><dd>{esc(', '.join(classes))}</dd>"
        f"<dt>sequence</dt><dd>{_value(m.get('sequence', {}))}</dd>"
        f"<dt>context</dt><dd>{_value(m.get('context', {}))}</dd>"
        f"<dt>step engine</dt><dd>{_value(view.engine)}</dd></dl></section>"
        '<section class="card"><h2>Thresholds</h2>'
        f'<table class="kv-table" id="thresholds">{thresholds}</table>'
        f"<h2>Metrics</h2>{_metrics_table(m.get('metrics', {}), classes)}</section></div>"
    )
    sim = f"<details><summary>simulator</summary>{_value(simulator)}</details>" if simulator else ""
    dep = f"<h3>Departures from the paper</h3>{_value(list(departures))}" if departures else ""
    figures = f'<div class="figures">{plots}</div>' if plots else "<p>No report plots.</p>"
    body += (
        f'<section class="card wide" id="training-data"><h2>Training data</h2>{_value(data)}{sim}</section>'
        f'<section class="card wide" id="training"><h2>Training</h2>{_value(training)}{dep}</section>'
        f'<section class="card wide" id="report"><h2>Evaluation report</h2>{figures}</section>'
    )
    return _layout("Model", body, "model")


# ------------------------------------------------------------------------------------ other pages


def error_page(title: str, message: str) -> str:
    """A page for 404/422/503 answers; ``message`` is plain text (escaped here)."""
    return _layout(title, f'<h1>{esc(title)}</h1><p class="error" id="error">{esc(message)}</p>'
                          '<p><a href="/ui">Back to the objects</a></p>')


def login_page(next_path: str, failed: bool = False) -> str:
    """The key form shown when reads are protected (``GOTO_PROTECT_READS``) and a request brings no key."""
    note = '<p class="error" id="error">That key was not accepted.</p>' if failed else ""
    body = (
        "<h1>API key required</h1>"
        "<p>This service protects reads. Enter one of its API keys; it is kept in a cookie for the pages "
        "only (<code>/ui</code>), or send <code>Authorization: Bearer &lt;key&gt;</code> instead.</p>"
        f'{note}<form class="login" method="post" action="/ui/login">'
        f'<input type="hidden" name="next" value="{esc(next_path)}">'
        '<label>API key <input name="key" type="password" autocomplete="current-password" required></label>'
        '<button type="submit">Open</button></form>'
    )
    return _layout("API key required", body)
