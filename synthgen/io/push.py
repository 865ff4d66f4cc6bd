"""`synthgen push RUN --repo-id ORG/NAME [--private | --public]`: publish a run's Hub layout to the Hugging Face Hub.

What is uploaded, in one commit: the Hub layout of synthgen/hub_layout.py (one parquet config per training
format, the FlagEmbedding and Tevatron files, the card, histograms and run.json).

The token comes from `huggingface_hub.get_token()`: `HF_TOKEN`, else the token `hf auth login` saved. It is
passed to the Hub client and never logged or written. Visibility: a new repository gets the Hub's default
(an organisation's setting included) unless `--private`/`--public` is given; an existing repository's
visibility is changed only when one of them is given and differs, and the change is logged.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Mapping

from synthgen.core.errors import LoaderError
from synthgen.io.card import kept_folder

log = logging.getLogger(__name__)

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
CARD_FILES = ["README.md", "hist_*.png", "run.json", "stats.json"]


class PushError(RuntimeError):
    """Publishing failed; the message is one line and never holds the token."""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _visibility(private: bool | None) -> str:
    return "the Hub's default" if private is None else ("private" if private else "public")


def plan(run: str | Path) -> dict[str, Any]:
    """What `push` uploads from a run folder (checked locally; nothing is sent)."""
    folder = Path(run)
    if not folder.is_dir():
        raise LoaderError(f"run folder not found: {folder}")
    kept = kept_folder(folder)
    if kept is None:
        raise LoaderError(f"{folder}: no triplets/ or kept/ dataset inside (is it a synthgen run folder?)")
    files = sorted({p.name for pat in CARD_FILES for p in folder.glob(pat)} | {"README.md"})
    return {"folder": folder, "kept": kept, "rejects": folder / "rejects", "files": files}


def ensure_repo(api: Any, repo_id: str, private: bool | None) -> str:
    """Create the dataset repo, or bring an existing one to the asked visibility; returns its URL."""
    if not api.repo_exists(repo_id, repo_type="dataset"):
        url = api.create_repo(repo_id, repo_type="dataset", private=private)
        log.info("created dataset %s (%s)", repo_id, _visibility(private))
        return str(url)
    current = bool(api.repo_info(repo_id, repo_type="dataset").private)
    if private is not None and private != current:
        api.update_repo_settings(repo_id, repo_type="dataset", private=private)
        log.warning("%s was %s; it is now %s, as asked", repo_id, _visibility(current), _visibility(private))
    else:
        log.info("%s exists and stays %s%s", repo_id, _visibility(current),
                 "" if private is not None else " (--private/--public change it)")
    return f"{api.endpoint.rstrip('/')}/datasets/{repo_id}"


def push(run: str | Path, repo_id: str, private: bool | None = None, env: Mapping[str, str] | None = None,
         num_negatives: int | None = None) -> str:
    """Upload the run's Hub layout; returns the dataset's URL. Raises PushError (one line) on any Hub failure."""
    env = os.environ if env is None else env
    if not REPO_ID.match(repo_id or ""):
        raise PushError(f"--repo-id must look like ORG/NAME, got {repo_id!r}")
    p = plan(run)
    if _truthy(env.get("HF_HUB_OFFLINE")):
        raise PushError("cannot reach the Hugging Face Hub: offline mode is on (HF_HUB_OFFLINE=1); unset it to push")
    from huggingface_hub import HfApi, get_token

    token = get_token()
    if not token:
        raise PushError("no Hugging Face token: run `hf auth login` or export HF_TOKEN (a write token)")

    def scrub(text: str) -> str:
        return text.replace(token, "***")

    from synthgen.io.hub_layout import MARKER, write_layout

    with tempfile.TemporaryDirectory(prefix="synthgen-push-") as tmp:
        layout = write_layout(p["folder"], Path(tmp) / "hub", num_negatives, repo_id)
        try:
            api = HfApi(token=token)
            url = ensure_repo(api, repo_id, private)
            api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=layout["path"],
                              ignore_patterns=[MARKER], commit_message="synthgen: configs, trainer files and card")
        except Exception as exc:  # the network boundary: any failure becomes one line, token scrubbed
            first = (str(exc).strip().splitlines() or [""])[0]
            raise PushError(scrub(f"push to {repo_id} failed: {type(exc).__name__}: {first}"[:400])) from None
    log.info("uploaded configs %s", ", ".join(f"{n} ({c['rows']} rows)" for n, c in layout["configs"].items()))
    return url
