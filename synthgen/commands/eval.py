"""`synthgen eval`: A/B of negative sources by the retriever they train (evaluation/)."""

from __future__ import annotations

from pathlib import Path


def run(args) -> int:
    from synthgen.evaluation.eval_report import format_table
    from synthgen.evaluation.eval_run import run_eval

    opts = eval_options(args)
    out = run_eval(opts)
    print(format_table(out["results"], out["meta"]["baseline"]))
    print(f"{out['meta']['seconds']:.0f} s; {out['folder'] / 'report.md'}")
    return 0


def eval_options(args):
    """The parsed `synthgen eval` arguments as the EvalOptions that run_eval takes."""
    from synthgen.core.config_load import load_config
    from synthgen.evaluation.eval_args import EvalOptions

    return EvalOptions(
        data=Path(args.data), output_dir=Path(args.output), sources=tuple(args.sources),
        seeds=tuple(range(args.seed_start, args.seed_start + args.seeds)), max_train_queries=args.max_train_queries,
        dev_queries=args.dev_queries, epochs=args.epochs, max_steps=args.max_steps, negatives=args.negatives,
        batch_size=args.batch_size, lr=args.lr, max_seq_length=args.max_seq_length,
        config=load_config(args.config, args.overrides), plot=not args.no_plot, base_model=args.base_model,
        model_name=args.model_name, validator=args.validator, teacher=args.teacher, baseline=args.baseline,
        loss=args.loss[0] if len(args.loss) == 1 else tuple(args.loss),
        batch_sampler=args.batch_sampler, mse_weight=args.mse_weight,
        kl_weight=args.kl_weight)
