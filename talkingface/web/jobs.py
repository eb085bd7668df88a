"""Background jobs of the web server: building an avatar pack from an uploaded video, offline synthesis.

Each job is a list of steps, each one of the project's own scripts run as a child process (so a
crash, MediaPipe or GL state cannot take the server down, and the script's one-line ``error:``
becomes the job's error). One worker runs jobs in order; ``GET /api/jobs/{id}`` reports
``state`` (queued|running|done|error), ``progress`` (finished steps / steps, 0..1), the running
step's name and its last log line.
"""
from __future__ import annotations

import logging
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from talkingface.config.paths import PACKAGE_ROOT  # where the top-level scripts live

log = logging.getLogger(__name__)

MAX_KEPT_JOBS = 200


@dataclass
class Job:
    id: str
    kind: str
    steps: List[Tuple[str, List[str]]]  # (name, argv)
    result: Dict = field(default_factory=dict)
    cleanup: List[Path] = field(default_factory=list)  # files removed when the job ends (uploads)
    state: str = "queued"
    done_steps: int = 0
    step: str = ""
    message: str = ""
    error: Optional[str] = None
    created: float = field(default_factory=time.time)
    finished: Optional[float] = None

    def public(self) -> Dict:
        progress = 1.0 if self.state == "done" else self.done_steps / max(len(self.steps), 1)
        return {"id": self.id, "kind": self.kind, "state": self.state, "progress": round(progress, 3),
                "step": self.step, "message": self.message, "error": self.error,
                "result": self.result if self.state == "done" else None}


def script(name: str, *args: str) -> List[str]:
    """argv running one of the repository's scripts with this interpreter."""
    return [sys.executable, str(PACKAGE_ROOT / name), *args]


class JobRunner:
    """A single worker thread running queued jobs' steps as child processes."""

    def __init__(self, timeout_s: float = 3600.0):
        self.jobs: Dict[str, Job] = {}
        self._queue: "queue.Queue[Optional[Job]]" = queue.Queue()
        self._lock = threading.Lock()
        self._proc: Optional[subprocess.Popen] = None
        self.timeout_s = timeout_s
        self._thread = threading.Thread(target=self._work, name="talkingface-web-jobs", daemon=True)
        self._thread.start()

    def submit(self, kind: str, steps: Sequence[Tuple[str, List[str]]], result: Optional[Dict] = None,
               cleanup: Sequence[Path] = ()) -> Job:
        job = Job(uuid.uuid4().hex[:12], kind, list(steps), dict(result or {}), list(cleanup))
        with self._lock:
            self.jobs[job.id] = job
            if len(self.jobs) > MAX_KEPT_JOBS:
                for old in [j for j in self.jobs.values() if j.finished][: len(self.jobs) - MAX_KEPT_JOBS]:
                    del self.jobs[old.id]
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> Optional[Job]:
        with self._lock:
            return self.jobs.get(job_id)

    def _run_step(self, job: Job, argv: List[str]) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
        proc = subprocess.Popen(argv, cwd=str(PACKAGE_ROOT), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")
        self._proc = proc
        last_error = None
        deadline = time.monotonic() + self.timeout_s
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.strip()
            if line:
                job.message = line[-300:]
                if line.startswith("error:"):
                    last_error = line[len("error:"):].strip()
            if time.monotonic() > deadline:
                proc.kill()
                last_error = f"step took longer than {self.timeout_s:.0f} s"
        rc = proc.wait()
        self._proc = None
        if rc != 0:
            raise RuntimeError(last_error or f"{Path(argv[1]).name} failed (exit status {rc})")

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            job.state = "running"
            try:
                for name, argv in job.steps:
                    job.step = name
                    log.info("job %s (%s): %s", job.id, job.kind, name)
                    self._run_step(job, argv)
                    job.done_steps += 1
                job.state = "done"
            except Exception as exc:  # the job's error is reported to the client; the worker goes on
                job.state = "error"
                job.error = str(exc)
                log.warning("job %s (%s) failed: %s", job.id, job.kind, exc)
            for path in job.cleanup:
                Path(path).unlink(missing_ok=True)
            job.finished = time.time()

    def close(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        self._queue.put(None)
