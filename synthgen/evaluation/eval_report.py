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


def _p(value: float | None) -> str:
    return "–" if value is None else (f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}")


def _cells(name: str, e: dict[str, Any], baseline: str | None) -> list[str]:
    """One condition's cells, shared by the printed and the markdown table."""
    st = e.get("stats") if baseline else None
    dev = f"{e['dev_ndcg@10']:.4f} ± {e['dev_ndcg@10_std']:.4f}" if "dev_ndcg@10" in e else "–"
    judged = "judged_relevant_negatives" in e
    return [name, e.get("loss") or "–", f"{e['ndcg@10']:.4f} ± {e['ndcg@10_std']:.4f}", dev,
            f"{e['recall@100']:.4f} ± {e['recall@100_std']:.4f}", str(e["train_rows"]),
            str(e.get("from_source", 0)), str(e.get("distinct_negatives", "–")), str(e["filled"]),
            f"{e['judged_relevant_negatives']:.3f}" if judged else "–",
            f"{e['unjudged_negatives']:.3f}" if judged else "–",
            f"{e['generated_negatives']:.3f}" if judged else "–",
            "baseline" if name == baseline else (f"{st['delta']:+.4f}" if st else "–"),
            _p(st["bootstrap_p"]) if st else "–", _p(st["ttest_p"]) if st else "–",
            ("yes" if st["beats"] else "no") if st else "–"]


HEAD = ["condition", "loss", "nDCG@10 test", "dev nDCG@10", "Recall@100", "rows", "from source",
        "distinct", "filled (random)", "judged rel.", "unjudged", "generated", "Δ vs {b}", "bootstrap p", "t-test p", "beats {b}"]


def format_table(results: dict[str, Any], baseline: str | None = None) -> str:
    """Printed table: per condition, seed mean ± std, the rows its source filled vs the random fill, and the
    paired tests against `baseline`."""
    head = [h.format(b=baseline or "baseline") for h in HEAD]
    rows = [head] + [_cells(n, e, baseline) for n, e in results.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _epochs(meta: dict[str, Any]) -> str:
    return f" ({meta['epochs']} epochs)" if (meta.get("epochs") or 1) > 1 else ""


def markdown_report(results: dict[str, Any], meta: dict[str, Any]) -> str:
    b = meta.get("baseline")
    head = [h.format(b=b or "baseline") for h in HEAD]
    lines = [f"# synthgen eval: {meta['dataset']}", "",
             f"{meta['train_pairs']} train pairs ({meta['train_queries']} queries), {meta['test_queries']} test / "
             f"{meta.get('dev_queries', 0)} dev queries, {meta['corpus_docs']} passages; {meta['steps']} steps"
             f"{_epochs(meta)} of "
             f"{meta['batch_size']} for every condition, seeds {meta['seeds']}, max length {meta['max_seq_length']}, "
             f"loss {meta.get('loss', 'mnrl')}.", "",
             "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(_cells(n, e, b)) + " |" for n, e in results.items()]
    lines += ["", f"Baseline: `{b}`. {meta.get('significance', '')}.",
              f"Filled (random): {meta.get('fill', '')}."]
    if meta.get("best_on_dev"):
        lines.append(f"Best condition on dev (the one to claim on test): `{meta['best_on_dev']}`.")
    return "\n".join(lines) + "\n"
