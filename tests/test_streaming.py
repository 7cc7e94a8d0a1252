"""Streaming to the terminal: the embedded model's turn appears token by token on a pty, and the record is the
same as with --no-stream."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import pexpect

from fake_ollama import DEFAULT_MODEL, FakeOllama, fake_ollama_fixture  # noqa: F401
from interview_sim.record import load_transcript

PTY_TIMEOUT_S = 240
RUN = [
    "run", "--interviewer-model", "scripted:default", "--candidate-model", "llamacpp:smollm2-135m",
    "--max-turns", "2", "--seed", "11", "--no-evaluate",
]  # fmt: skip
STREAMED_HEADER = "(candidate, llamacpp:smollm2-135m)"
"""The header the live view prints when a turn's first piece arrives (the recorded turn's header names the model)."""
FOOTER = re.compile(r"· \d+ tok · ")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def spawn(runs_dir: Path, *extra: str) -> pexpect.spawn:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = ["-m", "interview_sim", *RUN, "--runs-dir", str(runs_dir), *extra]
    return pexpect.spawn(sys.executable, args, env=env, encoding="utf-8", timeout=PTY_TIMEOUT_S, dimensions=(50, 220))


def record(run_dir: Path) -> dict[str, Any]:
    t = load_transcript(run_dir)
    return {
        "messages": [(m.role, m.agent, m.model, m.content, m.usage, m.stage, m.clock) for m in t.messages],
        "calls": [
            (c.role, c.model, c.prompt_tokens, c.completion_tokens, c.prompt_tokens_evaluated, c.finish_reason) for c in t.calls
        ],
        "stop_reason": t.stop_reason,
        # Timings (generation seconds, tokens per second) differ between any two runs; the counts may not.
        "usage": {m: (u.prompt_tokens, u.completion_tokens, u.calls) for m, u in t.usage.including_cached.by_model.items()},
    }


def only_run(runs_dir: Path) -> Path:
    (transcript,) = runs_dir.rglob("transcript.json")
    return transcript.parent


def test_embedded_model_streams_on_a_pty_and_records_what_no_stream_records(tmp_path: Path, smollm2_available: None) -> None:
    child = spawn(tmp_path / "streamed")
    child.expect_exact(STREAMED_HEADER)
    # Read what reaches the terminal until the turn is recorded (its footer); note when each piece arrived.
    reads: list[tuple[float, str]] = [(time.monotonic(), child.buffer)]  # what came with the header, if anything
    seen = child.buffer
    while not FOOTER.search(ANSI.sub("", seen)):
        piece = child.read_nonblocking(4096, timeout=PTY_TIMEOUT_S)
        reads.append((time.monotonic(), piece))
        seen += piece
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, seen + str(child.before)
    text_reads = [(at, p) for at, p in reads if ANSI.sub("", p).strip() and not FOOTER.search(ANSI.sub("", p))]
    # The turn came in pieces, the first well before the turn was recorded: it was shown as it was generated.
    assert len(text_reads) >= 3, reads
    assert text_reads[0][0] < reads[-1][0]

    plain = spawn(tmp_path / "plain", "--no-stream")
    plain.expect(pexpect.EOF)
    plain.close()
    assert plain.exitstatus == 0, plain.before
    assert STREAMED_HEADER not in plain.before and FOOTER.search(ANSI.sub("", plain.before))

    streamed_run, plain_run = record(only_run(tmp_path / "streamed")), record(only_run(tmp_path / "plain"))
    assert streamed_run == plain_run
    streamed_text = ANSI.sub("", "".join(p for _, p in reads))
    (candidate,) = [m for m in load_transcript(only_run(tmp_path / "streamed")).messages if m.role == "candidate"]
    assert " ".join(candidate.content.split()) in " ".join(streamed_text.split())


OLLAMA_ANSWER = "I would put a cache in front of the hottest reads and move report generation onto a queue."


def test_ollama_turns_stream_on_a_pty_and_record_what_no_stream_records(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    fake_ollama.chunk_delay_s = 0.05  # the real server sends a chunk per token as it generates
    ref = f"ollama:{DEFAULT_MODEL}"
    runs: dict[str, dict[str, Any]] = {}
    for mode in ("--stream", "--no-stream"):
        fake_ollama.enqueue(OLLAMA_ANSWER, prompt_eval_count=120, eval_count=19)
        child = pexpect.spawn(
            sys.executable,
            ["-m", "interview_sim", "run", "--interviewer-model", "scripted:default", "--candidate-model", ref,
             "--max-turns", "2", "--no-evaluate", "--runs-dir", str(tmp_path / mode), mode],
            env={**os.environ, "OLLAMA_HOST": fake_ollama.host}, encoding="utf-8", timeout=PTY_TIMEOUT_S, dimensions=(50, 220),
        )  # fmt: skip
        reads: list[str] = []
        while True:
            try:
                reads.append(ANSI.sub("", child.read_nonblocking(4096, timeout=PTY_TIMEOUT_S)))
            except pexpect.EOF:
                break
        child.close()
        assert child.exitstatus == 0, "".join(reads)
        shown = "".join(reads)
        if mode == "--stream":
            assert f"(candidate, {ref})" in shown
            body = shown.split(f"(candidate, {ref})", 1)[1]
            body = body[: FOOTER.search(body).start()]  # type: ignore[union-attr]
            # The answer reached the terminal in pieces, as the server sent them.
            assert sum(1 for r in reads if r.strip() and r.strip() in OLLAMA_ANSWER) >= 3, reads
            assert " ".join(body.split()) == OLLAMA_ANSWER
        else:
            assert f"(candidate, {ref})" not in shown and OLLAMA_ANSWER in " ".join(shown.split())
        runs[mode] = record(only_run(tmp_path / mode))
    assert [r["stream"] for r in fake_ollama.chat_requests] == [True, False]
    assert runs["--stream"] == runs["--no-stream"]
