"""`synthgen push RUN --repo-id ORG/NAME [--private]`: publish a run's splits and card to the Hugging Face Hub.

The token comes from the environment (`HF_TOKEN`) only; it is passed to the Hub client and never logged or
written. What is uploaded: the card (README.md, written first if the run has none), the histograms and the
run's run.json/stats.json, then the kept rows as config `default` (split `train`) and the rejects as config
`rejects` (split `train`) with `datasets.Dataset.push_to_hub`, which updates the card's metadata in place.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Mapping

from synthgen.card import kept_folder, write_card
from synthgen.read import LoaderError

log = logging.getLogger(__name__)

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
CARD_FILES = ["README.md", "hist_*.png", "run.json", "stats.json"]


class PushError(RuntimeError):
    """Publishing failed; the message is one line and never holds the token."""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def plan(run: str | Path) -> dict[str, Any]:
    """What `push` uploads from a run folder (checked locally; nothing is sent)."""
    folder = Path(run)
    if not folder.is_dir():
        raise LoaderError(f"run folder not found: {folder}")
    kept = kept_folder(folder)
    if kept is None:
        raise LoaderError(f"{folder}: no triplets/ or kept/ dataset inside (is it a synthgen run folder?)")
    info_file = next((folder / n for n in ("run.json", "stats.json") if (folder / n).is_file()), None)
    files = sorted({p.name for pat in CARD_FILES for p in folder.glob(pat)} | {"README.md"})
    return {"folder": folder, "splits": {"default": kept, "rejects": folder / "rejects"},
            "info_file": info_file, "files": files}


def push(run: str | Path, repo_id: str, private: bool = False, env: Mapping[str, str] | None = None) -> str:
    """Upload card + datasets; returns the dataset's URL. Raises PushError (one line) on any Hub failure."""
    env = os.environ if env is None else env
    if not REPO_ID.match(repo_id or ""):
        raise PushError(f"--repo-id must look like ORG/NAME, got {repo_id!r}")
    p = plan(run)
    if not (p["folder"] / "README.md").is_file():
        info = json.loads(p["info_file"].read_text(encoding="utf-8")) if p["info_file"] else {}
        write_card(p["folder"], info)
    if _truthy(env.get("HF_HUB_OFFLINE")):
        raise PushError("cannot reach the Hugging Face Hub: offline mode is on (HF_HUB_OFFLINE=1); unset it to push")
    token = env.get("HF_TOKEN")
    if not token:
        raise PushError("HF_TOKEN is not set: export a Hugging Face write token in the environment")

    def scrub(text: str) -> str:
        return text.replace(token, "***")

    try:
        from datasets import load_from_disk
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=str(p["folder"]),
                          allow_patterns=CARD_FILES, commit_message="synthgen: dataset card and run info")
        for config_name, path in p["splits"].items():
            if path.is_dir():
                load_from_disk(str(path)).push_to_hub(repo_id, config_name=config_name, split="train",
                                                      private=private, token=token,
                                                      commit_message=f"synthgen: {config_name} split")
    except Exception as exc:  # the network boundary: any failure becomes one line, token scrubbed
        first = (str(exc).strip().splitlines() or [""])[0]
        log.debug("push failed", exc_info=False)
        raise PushError(scrub(f"push to {repo_id} failed: {type(exc).__name__}: {first}"[:400])) from None
    return str(url)
