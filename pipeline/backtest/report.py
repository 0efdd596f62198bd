"""The backtest's report: a readable summary for the terminal, a JSON of the metrics, and a
self-contained HTML page (inline SVG plots, no script, no network) with the equity, the
drawdown, the exposure and the fills on the price.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pipeline.backtest.analysis import Analysis, FillPoint
from pipeline.backtest.metrics import Metrics

WIDTH, HEIGHT, PAD = 900, 220, 48
MAX_POINTS = 1500
"""Points per plotted line (a long run is thinned by a fixed stride: same data, same page)."""


def _pct(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f} %"


def _num(value: Decimal | None, places: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{places}f}"


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def summary_rows(m: Metrics) -> list[tuple[str, str]]:
    q = m.quote
    return [
        ("equity", f"{_num(m.start_equity)} -> {_num(m.end_equity)} {q}"),
        ("total return", _pct(m.total_return)),
        ("Sharpe (annualised)", _num(m.sharpe)),
        ("Sortino (annualised)", _num(m.sortino)),
        ("max drawdown", _pct(m.max_drawdown)),
        ("trades (FIFO, open ones marked)", str(m.trades)),
        ("win rate", _pct(m.win_rate)),
        ("profit factor", _num(m.profit_factor)),
        ("traded notional", f"{_num(m.traded_notional)} {q}"),
        ("turnover (x mean equity)", _num(m.turnover)),
        ("fees", f"{_num(m.fees)} {q}"),
        ("slippage against plan", f"{_num(m.slippage_vs_plan)} {q} ({_num(m.slippage_bps)} bps)"),
        ("intents / completed / failed", f"{m.intents} / {m.completed} / {m.failed}"),
        ("fills", str(m.fills)),
    ]


def summary_text(m: Metrics, header: Sequence[tuple[str, str]] = ()) -> str:
    rows = [*header, *summary_rows(m)]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


def _thin(points: Sequence[tuple[int, Decimal]]) -> list[tuple[int, Decimal]]:
    if len(points) <= MAX_POINTS:
        return list(points)
    stride = -(-len(points) // MAX_POINTS)
    thinned = list(points[::stride])
    if thinned[-1] != points[-1]:
        thinned.append(points[-1])
    return thinned


def svg_chart(
    title: str,
    points: Sequence[tuple[int, Decimal]],
    *,
    percent: bool = False,
    fills: Sequence[FillPoint] = (),
    area: bool = False,
) -> str:
    """One line chart (time on x) as inline SVG; ``fills`` are drawn as triangles."""
    points = _thin(points)
    if not points:
        return f"<h3>{html.escape(title)}</h3><p>no data</p>"
    xs = [p[0] for p in points]
    ys = [float(p[1]) for p in points]
    marks = [(f.at_ms, float(f.price)) for f in fills if f.price is not None]
    lo = min(ys + [y for _, y in marks])
    hi = max(ys + [y for _, y in marks])
    if hi == lo:
        hi, lo = hi + 1, lo - 1
    x0, x1 = xs[0], max(xs[-1], xs[0] + 1)

    def sx(x: int) -> float:
        return PAD + (x - x0) / (x1 - x0) * (WIDTH - 2 * PAD)

    def sy(y: float) -> float:
        return HEIGHT - PAD / 2 - (y - lo) / (hi - lo) * (HEIGHT - PAD)

    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys, strict=True))
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-label="{html.escape(title)}">',
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>',
    ]
    for frac in (0, 0.5, 1):
        value = lo + frac * (hi - lo)
        label = f"{value * 100:.1f}%" if percent else f"{value:,.2f}"
        y = sy(value)
        parts.append(
            f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="4" y="{y + 4:.1f}" font-size="10" fill="#666">{label}</text>'
        )
    parts.append(
        f'<text x="{PAD}" y="{HEIGHT - 4}" font-size="10" fill="#666">{_when(x0)}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 4}" font-size="10" fill="#666" '
        f'text-anchor="end">{_when(x1)}</text>'
    )
    if area:  # filled between zero and the line
        base = sy(min(max(0.0, lo), hi))
        parts.append(
            f'<polygon points="{sx(xs[0]):.1f},{base:.1f} {path} {sx(xs[-1]):.1f},{base:.1f}" '
            'fill="#f3c5c5" stroke="none"/>'
        )
    parts.append(f'<polyline points="{path}" fill="none" stroke="#1f5fbf" stroke-width="1.3"/>')
    for fill in fills:
        if fill.price is None:
            continue
        x, y = sx(fill.at_ms), sy(float(fill.price))
        if fill.side == "buy":
            shape = f"{x:.1f},{y - 5:.1f} {x - 4:.1f},{y + 3:.1f} {x + 4:.1f},{y + 3:.1f}"
            color = "#1a9a3a"
        else:
            shape = f"{x:.1f},{y + 5:.1f} {x - 4:.1f},{y - 3:.1f} {x + 4:.1f},{y - 3:.1f}"
            color = "#c62828"
        parts.append(
            f'<polygon points="{shape}" fill="{color}"><title>{fill.side} '
            f"{fill.amount_out if fill.side == 'buy' else fill.amount_in} at "
            f"{fill.price:.4f}</title></polygon>"
        )
    parts.append("</svg>")
    return f"<h3>{html.escape(title)}</h3>" + "".join(parts)


def html_report(analysis: Analysis, header: Mapping[str, Any]) -> str:
    m, s = analysis.metrics, analysis.series
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in [*((k, str(v)) for k, v in header.items()), *summary_rows(m)]
    )
    charts = [
        svg_chart(f"Equity ({m.quote})", list(zip(s.times, s.equity, strict=True))),
        svg_chart(
            "Drawdown",
            [(t, -d) for t, d in zip(s.times, s.drawdown, strict=True)],
            percent=True,
            area=True,
        ),
        svg_chart(
            "Exposure (non-quote holdings / equity)",
            list(zip(s.times, s.exposure, strict=True)),
            percent=True,
        ),
    ]
    for asset, prices in sorted(s.prices.items()):
        traded = [f for f in s.fills if asset in (f.asset_in, f.asset_out)]
        charts.append(svg_chart(f"{asset} price ({m.quote}) and our fills", prices, fills=traded))
    fills = "".join(
        f"<tr><td>{_when(f.at_ms)}</td><td>{f.side}</td><td>{f.amount_in} {f.asset_in}</td>"
        f"<td>{f.amount_out} {f.asset_out}</td><td>{_num(f.price, 4)}</td>"
        f"<td>{html.escape(f.intent_id)}</td></tr>"
        for f in s.fills[:500]
    )
    more = f"<p>... and {len(s.fills) - 500} more fills.</p>" if len(s.fills) > 500 else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sep backtest</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em auto; max-width: 960px; color: #222 }}
table {{ border-collapse: collapse; margin: 1em 0 }}
th, td {{ text-align: left; padding: 2px 12px 2px 0; border-bottom: 1px solid #eee;
          font-variant-numeric: tabular-nums }}
h3 {{ margin: 1.5em 0 0.3em }}
</style></head><body>
<h1>Backtest report</h1>
<table>{rows}</table>
{"".join(charts)}
<h3>Fills</h3>
<table><tr><th>time (UTC)</th><th>side</th><th>paid</th><th>received</th><th>price</th>
<th>intent</th></tr>{fills}</table>{more}
</body></html>
"""
