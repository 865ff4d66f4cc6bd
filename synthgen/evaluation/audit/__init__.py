"""`synthgen audit`: how well validation separates false negatives from good ones, measured on dense qrels.

split   hides part of each query's known positives and writes the visible part as a BEIR input folder
metrics counts, over the pipeline's kept and rejected rows, what the hidden positives tell about each rule
st      sentence-transformers' `mine_hard_negatives` on the same visible pairs, as the baseline
report  audit.json, a markdown table and one PNG
command the CLI entry: split -> the real `mine`/`generate` -> metrics next to the ST sweep -> report
"""
