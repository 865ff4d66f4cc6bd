"""The Ray runner's input: (query, positive) pairs read by `ray.data` readers, normalised as the local reader does.

- JSONL of pairs: `read_json`, each object through io.read's `pair_values` (a `map_batches`);
- Hugging Face data: `read_parquet` / `read_csv` for data files, `from_huggingface(load_from_disk(...))` for a
  save_to_disk folder; columns as io.read's `load_hf_pairs` takes them;
- BEIR folder: `read_json` of queries.jsonl and corpus.jsonl (passages through io.beir's `passage_text`),
  `read_csv` of qrels/<split>.tsv, then two left joins (judgement -> query text, -> passage).

Rows are numbered while read (`preserve_order`, `monotonically_increasing_id`), so after the reads the pairs are
in file order; the dataset-wide rules of the local reader (empty, repeated and missing pairs, truncation,
max_queries) then run on them through io.read's own `finish_pairs`, and the skip counts are the same.
A file pyarrow's JSON reader cannot read (a raw invalid-UTF-8 line, broken JSON) is read again by synthgen's own
reader (runners/execute.read_pairs): the bad line is skipped and counted, or the same one-line error, as locally.
Not as locally: a corpus id given twice is not counted as duplicate_id.
"""

from __future__ import annotations

from pathlib import Path

from synthgen.core.config import InputConfig
from synthgen.core.errors import LoaderError
from synthgen.core.schema import PAIR_COLUMNS, Batch
from synthgen.io.beir import passage_text, require_field
from synthgen.io.input_files import InputStats
from synthgen.io.read import finish_pairs, pair_values, pairs_input

ORD = "_ord"


class JsonlPairs:
    """map_batches: objects of a JSONL of pairs -> pair columns (ids None where the object has none)."""

    def __init__(self, cfg: InputConfig, path: str):
        self.cfg, self.path = cfg, Path(path)

    def __call__(self, table):
        c = self.cfg
        out: dict[str, list] = {col: [] for col in (*PAIR_COLUMNS, ORD)}
        for row in table.to_pylist():
            present = {k: v for k, v in row.items() if v is not None}  # Arrow fills a key a row lacks with null
            for col, v in zip(PAIR_COLUMNS, pair_values(present, self.path, None, c.query_field, c.positive_field,
                                                        c.query_id_field, c.positive_id_field)):
                out[col].append(v)
            out[ORD].append(row[ORD])
        return out


class HFPairs:
    """map_batches: rows of a Hugging Face table -> pair columns, as io.read.load_hf_pairs converts them."""

    def __init__(self, cfg: InputConfig):
        self.cfg = cfg

    def __call__(self, table):
        c, names = self.cfg, table.column_names
        col = table.to_pydict()
        n = table.num_rows
        ids = {f: [str(x) for x in col[f]] if f in names else [None] * n for f in (c.query_id_field, c.positive_id_field)}
        return {"query_id": ids[c.query_id_field], "query": [str(x or "") for x in col[c.query_field]],
                "positive_id": ids[c.positive_id_field], "positive": [str(x or "") for x in col[c.positive_field]],
                ORD: col[ORD]}


class CorpusRows:
    """map_batches: corpus.jsonl objects -> (_pid, passage) with io.beir's passage_text."""

    def __init__(self, path: str):
        self.path = Path(path)

    def __call__(self, table):
        rows = table.to_pylist()
        return {"_pid": [str(require_field(r, "_id", self.path, 0)) for r in rows],
                "passage": [passage_text({k: v for k, v in r.items() if v is not None}, self.path, 0) for r in rows]}


def _numbered(ds):
    from ray.data.expressions import monotonically_increasing_id

    return ds.with_column(ORD, monotonically_increasing_id())


def _hf(cfg: InputConfig, path: Path):
    import ray

    if path.is_dir():
        from datasets import DatasetDict, load_from_disk

        hf = load_from_disk(str(path))
        if isinstance(hf, DatasetDict):
            if cfg.split not in hf:
                raise LoaderError(f"{path}: no split {cfg.split!r} (have: {', '.join(hf)})")
            hf = hf[cfg.split]
        ds = ray.data.from_huggingface(hf)
    elif path.name.endswith(".parquet"):
        ds = ray.data.read_parquet(str(path))
    elif path.is_file():
        ds = ray.data.read_csv(str(path))
    else:
        raise LoaderError(f"runner: ray reads local data files and folders; {path} is neither (use runner: local "
                          "for a Hub id)")
    names = ds.schema().names
    for col in (cfg.query_field, cfg.positive_field):
        if col not in names:
            raise LoaderError(f"{path}: missing column {col!r} (have: {', '.join(names)})")
    return _numbered(ds).map_batches(HFPairs(cfg), batch_format="pyarrow")


def _beir(folder: Path, split: str, stats: InputStats) -> Batch:
    import pyarrow.csv as pacsv
    import ray

    qrels_path = folder / "qrels" / f"{split}.tsv"
    for p in (qrels_path, folder / "corpus.jsonl", folder / "queries.jsonl"):
        if not p.is_file():
            raise LoaderError(f"missing file: {p}" + (f" (BEIR split {split!r})" if p == qrels_path else ""))
    qrels = ray.data.read_csv(str(qrels_path), parse_options=pacsv.ParseOptions(delimiter="\t"),
                              convert_options=pacsv.ConvertOptions(column_types={"query-id": "string",
                                                                                 "corpus-id": "string",
                                                                                 "score": "string"}))
    if qrels.schema().names[:2] != ["query-id", "corpus-id"]:
        raise LoaderError(f"{qrels_path}: expected header 'query-id<TAB>corpus-id<TAB>score'")
    qrels = _numbered(qrels.filter(lambda r: not (r.get("score") or "").strip() or float(r["score"]) > 0))
    queries = ray.data.read_json(str(folder / "queries.jsonl"), lines=True).map_batches(
        lambda t: {"_qid": [str(x) for x in t.column("_id").to_pylist()],
                   "query": [str(x) for x in t.column("text").to_pylist()]}, batch_format="pyarrow")
    corpus = ray.data.read_json(str(folder / "corpus.jsonl"), lines=True).map_batches(
        CorpusRows(str(folder / "corpus.jsonl")), batch_format="pyarrow")
    joined = qrels.join(queries, "left_outer", 1, on=("query-id",), right_on=("_qid",)) \
        .join(corpus, "left_outer", 1, on=("corpus-id",), right_on=("_pid",))
    rows = sorted(joined.take_all(), key=lambda r: r[ORD])
    # As io.beir.load_beir: a judgement without its query or a (non-empty) passage is skipped and counted;
    # an empty passage once as empty_text.
    empty = {r["corpus-id"] for r in rows if r.get("passage") is not None and not r["passage"].strip()}
    if empty:
        stats.skip("empty_text", len(empty))
    out: dict[str, list] = {c: [] for c in PAIR_COLUMNS}
    for r in rows:
        if r.get("query") is None or r.get("passage") is None or r["corpus-id"] in empty:
            stats.skip("qrels_missing_id")
            continue
        for col, v in zip(PAIR_COLUMNS, (r["query-id"], r["query"], r["corpus-id"], r["passage"])):
            out[col].append(v)
    return out


def _gathered(ds, first_line: int) -> Batch:
    """The pairs in file order; ids a row did not have become q<n>/p<n>, n its line (JSONL) or row (HF)."""
    rows = sorted(ds.take_all(), key=lambda r: r[ORD])
    out: dict[str, list] = {c: [] for c in PAIR_COLUMNS}
    for n, r in enumerate(rows, first_line):
        for col in PAIR_COLUMNS:
            v = r[col]
            out[col].append(v if v is not None else f"{col[0]}{n}")
    return out


def read_pairs_on_ray(cfg: InputConfig) -> tuple[Batch, InputStats]:
    """(pairs, skip counts), equal to io.read.load_input_with_stats's on the same input."""
    import ray

    stats = InputStats()
    path, fmt = pairs_input(cfg)
    options = ray.data.DataContext.get_current().execution_options
    before, options.preserve_order = options.preserve_order, True
    try:
        if fmt == "beir":
            batch = _beir(path, cfg.split, stats)
        elif fmt == "hf":
            batch = _gathered(_hf(cfg, path), 0)
        else:
            if not path.is_file():
                raise LoaderError(f"missing file: {path}")
            ds = _numbered(ray.data.read_json(str(path), lines=True))
            batch = _gathered(ds.map_batches(JsonlPairs(cfg, str(path)), batch_format="pyarrow"), 1)
    finally:
        options.preserve_order = before
    return finish_pairs(batch, cfg, stats, str(path)), stats
