"""`synthgen eval` output: the results table and the bar chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot(results: dict[str, Any], dest: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    means = [results[n]["ndcg@10"] for n in names]
    stds = [results[n]["ndcg@10_std"] for n in names]
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 2, 4))
    colors = ["#999999" if n == "zero-shot" else "#4c72b0" for n in names]
    ax.bar(names, means, yerr=stds, capsize=5, color=colors)
    ax.axhline(results["zero-shot"]["ndcg@10"], color="#999999", linestyle="--", linewidth=1)
    lo = max(0.0, min(means) - 0.05)
    ax.set_ylim(lo, max(m + s for m, s in zip(means, stds)) + 0.02)
    for i, (m, s) in enumerate(zip(means, stds)):
        ax.text(i, m + s + 0.003, f"{m:.4f}", ha="center", fontsize=8)
    ax.set_ylabel("nDCG@10")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(dest, dpi=120)
    plt.close(fig)


def format_table(results: dict[str, Any]) -> str:
    head = (f"{'source':10s} {'nDCG@10':>16s} {'R@100':>16s} {'rows':>5s} {'filled':>6s} "
            f"{'rel.neg':>7s} {'unjudg':>6s} {'gen':>5s}  vs in-batch")
    lines = [head, "-" * len(head)]
    for name, e in results.items():
        vs = e.get("vs", {}).get("none")
        verdict = "" if not vs else f"{vs['delta']:+.4f} ({'real' if vs['real'] else 'within noise'})"
        lines.append(
            f"{name:10s} {e['ndcg@10']:.4f} ± {e['ndcg@10_std']:.4f}  {e['recall@100']:.4f} ± "
            f"{e['recall@100_std']:.4f} {e['train_rows']:5d} {e['filled']:6d} "
            f"{e.get('judged_relevant_negatives', 0):7.3f} {e.get('unjudged_negatives', 0):6.3f} "
            f"{e.get('generated_negatives', 0):5.2f}  {verdict}")
    return "\n".join(lines)
