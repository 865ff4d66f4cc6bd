"""The one table `make bench` prints (stage, synthgen, baseline, ratio, goal, met?), built from the raw figures
of each part, and its PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLUMNS = ("stage", "synthgen", "baseline", "ratio", "goal", "met")


def _row(stage: str, ours: str, base: str, ratio: float | None, goal: float | None, better: str = "higher",
         vs: str = "", checked: float | None = None) -> dict[str, Any]:
    """`checked` (default: the ratio) is what the goal applies to."""
    checked = ratio if checked is None else checked
    met = None if goal is None or checked is None else (checked >= goal if better == "higher" else checked <= goal)
    goal_text = "-" if goal is None else (f">= {goal:g}" if better == "higher" else f"<= {goal:g}")
    return {"stage": stage, "synthgen": ours, "baseline": base, "ratio": ratio, "goal": goal_text,
            "met": "-" if met is None else ("yes" if met else "NO"), "baseline_is": vs}


def table_rows(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per figure present in `raw` (a part not run yet has no row; a failed part has one that says so)."""
    rows = [{"stage": part, "synthgen": "failed", "baseline": "-", "ratio": None, "goal": "-", "met": "NO",
             "baseline_is": raw[part]["error"]} for part in ("llm", "scorer", "dedup", "mining", "rss")
            if "error" in raw.get(part, {})]
    raw = {part: r for part, r in raw.items() if not (isinstance(r, dict) and "error" in r)}
    if "llm" in raw:
        r = raw["llm"]
        rows.append(_row("llm generate (tokens/s)", f"{r['synthgen']['tokens_per_s']}", f"{r['raw']['tokens_per_s']}",
                         r["ratio"], 0.95, vs="same requests posted by a thread pool to the same llama.cpp server"))
    if "scorer" in raw:
        r = raw["scorer"]
        rows.append(_row("scorer (pairs/s)", f"{r['synthgen']['pairs_per_s']}", f"{r['raw_encode']['pairs_per_s']}",
                         r["ratio"], 0.95, vs="model.encode(queries) + model.encode(passages) + row-wise dot"))
    if "dedup" in raw:
        r = raw["dedup"]
        rows.append(_row("dedup (s)", f"{r['synthgen_seconds']}", f"{r['naive_seconds']}", r["ratio"], 10,
                         vs="Python loop, one rapidfuzz fuzz.ratio per pair, same rules"))
    if "mining" in raw:
        r = raw["mining"]
        rows.append(_row("mining, cold cache (s)", f"{r['cold']['synthgen_seconds']}",
                         f"{r['cold']['st_default_seconds']}", r["cold"]["ratio"], 0.95,
                         vs="ST mine_hard_negatives, default call (no cache_folder)"))
        rows.append(_row("mining, warm cache (s)", f"{r['warm']['synthgen_seconds']}",
                         f"{r['warm']['st_default_seconds']}", r["warm"]["ratio"], 1.2,
                         vs="ST mine_hard_negatives, default call (no cache_folder)"))
        rows.append(_row("mining, both warm (s)", f"{r['both_warm']['synthgen_seconds']}",
                         f"{r['both_warm']['st_cache_folder_seconds']}", r["both_warm"]["ratio"], None,
                         vs="ST mine_hard_negatives with a warm cache_folder"))
    if "rss" in raw:
        r = raw["rss"]
        peak = r.get("peak_rss_mib")
        rows.append(_row(f"mine RSS, {r.get('docs', 0):,} passages / {r.get('queries', 0):,} queries (MiB)",
                         f"{peak}", "-", None, 1024, better="lower", vs="(an absolute figure: peak RSS)",
                         checked=peak))
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table: printed by the bench and pasted into the README as is."""
    cells = [list(COLUMNS)] + [[str(r[c]) if r[c] is not None else "-" for c in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


def write_png(rows: list[dict[str, Any]], path: Path) -> None:
    """Bar chart of the ratios against their goals (rows without a ratio goal are left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r["ratio"] is not None and r["goal"].startswith(">=")]
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(shown) + 1.2))
    names = [r["stage"] for r in shown]
    ax.barh(names, [r["ratio"] for r in shown], color=["tab:green" if r["met"] == "yes" else "tab:red" for r in shown])
    for y, r in enumerate(shown):
        goal = float(r["goal"].split()[-1])
        ax.plot([goal, goal], [y - 0.4, y + 0.4], color="black")
        ax.text(r["ratio"], y, f" {r['ratio']:g}", va="center")
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("synthgen speed / baseline speed (black line: goal)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
