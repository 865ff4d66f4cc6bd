"""A built wheel carries everything a run needs (templates, sample data): install it into a fresh venv and run.

The fresh venv gets the wheel alone (`--no-deps`, no index); its dependencies come from this environment's
site-packages through a .pth line (appended to sys.path, so the wheel's own `synthgen` wins, and this
environment's editable-install hook is not run). The run happens outside the checkout, without PYTHONPATH.
"""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(cmd, cwd, env, timeout=600):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout[-1500:]} {proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp / "dist", ROOT],
        tmp, env)
    (wheel,) = (tmp / "dist").glob("synthgen-*.whl")
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", venv], tmp, env)
    py = venv / "bin" / "python"
    run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], tmp, env)
    site = Path(run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, env).strip())
    (site / "zz_deps_from_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return {"tmp": tmp, "venv": venv, "py": py, "env": env, "wheel": wheel}


def test_wheel_contains_templates_and_sample(wheel_venv):
    import zipfile

    names = zipfile.ZipFile(wheel_venv["wheel"]).namelist()
    templates = {Path(n).name for n in names if n.startswith("synthgen/prompts/") and n.endswith(".j2")}
    shipped = {p.name for p in (ROOT / "synthgen" / "prompts").glob("*.j2")}
    assert templates == shipped and "topic_near.j2" in templates
    assert "synthgen/data/sample/corpus.jsonl" in names


def test_installed_wheel_lists_prompts(wheel_venv):
    v = wheel_venv
    where = run([v["py"], "-c", "import synthgen.llm.prompt as p; print(p.__file__); print(p.default_prompts_dir())"],
                v["tmp"], v["env"]).split()
    assert all(w.startswith(str(v["venv"])) for w in where), where  # the wheel's copy, not the checkout
    out = run([v["venv"] / "bin" / "synthgen", "prompts"], v["tmp"], v["env"])
    names = {line.split()[1] for line in out.splitlines() if line.strip()}
    assert {"topic_near", "minimal_edit", "answer_removed", "judge_answers", "query_question"} <= names


def test_installed_wheel_generates_on_the_sample(wheel_venv, llama_server):
    v = wheel_venv
    env = {**v["env"], "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = run([v["venv"] / "bin" / "synthgen", "generate", "--set", "output_dir=out", "--set", "input.max_queries=3",
               "--set", "prompts.strategies=[answer_removed]",  # written without the LLM: quick on CPU
               "--set", f"llm.base_url={llama_server.base_url}", "--set", f"llm.model={llama_server.model_name}"],
              v["tmp"], env)
    folder = v["tmp"] / out.strip().splitlines()[-1]
    assert folder.name.startswith("generate-sample-")
    info = json.loads((folder / "run.json").read_text())
    counts = info["counts"]
    assert info["input"]["queries"] == 3 and counts["kept"] >= 1
    assert counts["kept"] + counts["rejected"] == counts["candidates"] + counts["not_applicable"]
    assert info["templates"]["answer_removed"]["file"] == "answer_removed.j2"
