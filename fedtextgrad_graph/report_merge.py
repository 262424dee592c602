"""Report section for each round's merge: coverage, UID score, length ratio, repairs, fallback."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

__all__ = ["merge_html"]

MERGE_COLUMNS = ("round", "strategy", "coverage", "UID score", "concatenation UID", "length ratio", "repairs", "fallback", "targets met", "missing instructions")


def _targets(met: bool | None) -> str:
    return "– (measured only)" if met is None else ("yes" if met else "no")


def merge_html(payload: Mapping[str, Any]) -> str:
    """A table of every merged round's measures (see aggregation/repair.py); empty if none."""
    rounds = [r for r in payload["history"] if r.get("merge")]
    if not rounds:
        return ""
    head = "".join(f'<th class="text">{c}</th>' if c in ("strategy", "missing instructions") else f"<th>{c}</th>" for c in MERGE_COLUMNS)
    rows = []
    for r in rounds:
        m = r["merge"]
        missing = "<br>".join(html.escape(text) for text in m["missing"]) or "–"
        rows.append(
            f'<tr><td>{r["round"]}</td><td class="text">{html.escape(m["strategy"])}</td>'
            f'<td>{m["coverage"]:.2f} ({m["covered"]}/{m["units"]})</td><td>{m["uid_score"]:.3f}</td>'
            f'<td>{m["concat_uid_score"]:.3f}</td><td>{m["length_ratio"]:.2f}</td><td>{m["repairs"]}</td>'
            f'<td>{"yes" if m["fallback"] else "no"}</td><td>{_targets(m["met_targets"])}</td><td class="text">{missing}</td></tr>'
        )
    estimator = html.escape(f"{rounds[-1]['merge']['estimator']} ({rounds[-1]['merge']['surprisal']['unit']})")
    return (
        "<h3>Merge</h3>\n"
        '<p class="label">Coverage: the share of the unique client instructions the global prompt keeps. '
        "UID score: the coefficient of variation of per-sentence surprisal (lower is more uniform), beside "
        f"the deduplicated concatenation's; surprisal estimator: {estimator}. Length ratio: against the "
        "longest client prompt.</p>\n"
        f'<div style="overflow-x: auto"><table id="merge"><thead><tr>{head}</tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table></div>\n'
    )
