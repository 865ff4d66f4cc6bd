"""audit.json, audit.md (the side-by-side table) and audit.png (FN rate against yield and hardness)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthgen.io.write import write_json


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def comparison_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """synthgen's run, then each ST setting: (name, pair yield, FN rate, kept, hardness by both models)."""
    rows = [{"name": "synthgen (this config)", **result["synthgen"]["summary"]}]
    rows += [{"name": f"ST {name}", **entry} for name, entry in result.get("st_sweep", {}).items()]
    return rows


def markdown(result: dict[str, Any]) -> str:
    s = result["split"]
    lines = [
        f"# synthgen audit: {result['input']} ({result['qrels_split']} split)",
        "",
        f"{s['queries']} queries with >= {result['min_positives']} positives; {result['hide']:.0%} of each query's "
        f"positives hidden (seed {result['seed']}): {s['visible_pairs']} visible pairs, {s['hidden_positives']} hidden "
        f"positives. Candidate pool: the whole corpus ({result['corpus_docs']} passages). Hardness: mean "
        f"query-negative cosine of the mining model ({result['mining_model']}) and of an independent model "
        f"({result['independent_model']}).",
        "",
        "| setting | pairs with a negative | kept negatives | kept FN rate | hardness (mining model) | "
        "hardness (independent) |",
        "|---|---|---|---|---|---|",
    ]
    for r in comparison_rows(result):
        lines.append(f"| {r['name']} | {_pct(r['pair_yield'])} | {r['kept']} | {_pct(r['fn_rate'])} | "
                     f"{_num(r['hardness_mining'])} | {_num(r['hardness_independent'])} |")
    syn = result["synthgen"]
    lines += ["", "## synthgen per source", "",
              "| source | kept | kept FN rate | hidden positives among candidates | caught (catch rate) | pair yield |",
              "|---|---|---|---|---|---|"]
    for name, m in [("all", syn["overall"])] + list(syn["per_source"].items()):
        lines.append(f"| {name} | {m['kept']} | {_pct(m['fn_rate'])} | {m['hidden_in_candidates']} | "
                     f"{m['caught']} ({_pct(m['catch_rate'])}) | {_pct(m['pair_yield'])} |")
    lines += ["", f"## Rules: precision as false-negative detectors (base rate of hidden positives among mined "
                  f"candidates: {_pct(syn['base_rate'])})", "",
              "A rule near the base rate discards good negatives as often as bad ones.", "",
              "| rule | fired | on mined rows | hidden positives | precision | base rate where it runs |",
              "|---|---|---|---|---|---|"]
    for rule, m in syn["rules"].items():
        lines.append(f"| {rule} | {m['fired']} | {m['fired_mined']} | {m['hidden_positives']} | {_pct(m['precision'])} "
                     f"| {_pct(m.get('base_rate_reached'))} |")
    if syn.get("synthetic", {}).get("kept"):
        v = syn["synthetic"]
        lines += ["", f"Synthetic (LLM) negatives kept: {v['kept']}; the independent model scores "
                      f"{v['at_or_above_hidden_median']} ({_pct(v['share'])}) of them at or above the median of their "
                      f"query's hidden positives (likely answers)."]
    if syn.get("degeneracy"):
        lines += ["", "Degeneracy rejects: " + ", ".join(f"{k} {v}" for k, v in syn["degeneracy"].items())]
    lines += ["", f"Run folder of the audited pipeline: `{result['run_folder']}`; {result['seconds']:.0f} s in all.", ""]
    return "\n".join(lines)


def plot(result: dict[str, Any], dest: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = comparison_rows(result)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label in ((axes[0], "pair_yield", "share of pairs with a negative"),
                           (axes[1], "hardness_mining", "hardness (mining-model cosine)")):
        for r in rows:
            if r.get(key) is None or r.get("fn_rate") is None:
                continue
            ours = r["name"].startswith("synthgen")
            ax.scatter(r[key], 100 * r["fn_rate"], s=90 if ours else 45, marker="*" if ours else "o",
                       color="tab:red" if ours else "tab:blue")
            ax.annotate(r["name"].replace("ST ", ""), (r[key], 100 * r["fn_rate"]), fontsize=7,
                        xytext=(4, 3), textcoords="offset points")
        ax.set_xlabel(label)
        ax.set_ylabel("kept false-negative rate (%)")
        ax.grid(alpha=0.3)
    fig.suptitle("synthgen validation vs sentence-transformers mine_hard_negatives (lower FN is better)")
    fig.tight_layout()
    fig.savefig(dest, dpi=110)
    plt.close(fig)


def write_report(result: dict[str, Any], folder: Path) -> None:
    write_json(result, folder / "audit.json")
    (folder / "audit.md").write_text(markdown(result), encoding="utf-8")
    plot(result, folder / "audit.png")
