"""OpenTelemetry GenAI traces: our OTLP/HTTP export received on 127.0.0.1, decoded with the protocol's own protobuf
definitions (opentelemetry-proto), and checked against the transcript and evaluation it came from."""

from __future__ import annotations

import http.server
import importlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cli_process import SCRIPTED, one_line, run_cli
from interview_sim.grading.evaluate import load_evaluations
from interview_sim.record import load_transcript

# Locally a missing opentelemetry-proto skips these tests; under CI (CI=true), where `make test` installs it, it fails them.
PROTO = "opentelemetry.proto.collector.trace.v1.trace_service_pb2"
trace_service = importlib.import_module(PROTO) if os.environ.get("CI") else pytest.importorskip(PROTO)


@dataclass
class Collector:
    """A minimal OTLP/HTTP traces receiver: every request decoded and kept."""

    url: str
    requests: list[Any] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    authorization: list[str] = field(default_factory=list)

    def spans(self) -> list[Any]:
        return [s for r in self.requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]

    def resources(self) -> list[dict[str, Any]]:
        return [_attrs(rs.resource.attributes) for r in self.requests for rs in r.resource_spans]


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


def _attrs(attributes: Any) -> dict[str, Any]:
    return {a.key: _value(a.value) for a in attributes}


@pytest.fixture
def collector() -> Iterator[Collector]:
    received = Collector(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = trace_service.ExportTraceServiceRequest()
            request.ParseFromString(body)
            received.requests.append(request)
            received.paths.append(self.path)
            received.content_types.append(self.headers.get("Content-Type", ""))
            received.authorization.append(self.headers.get("Authorization", ""))
            answer = trace_service.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    received.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()


def _run(runs_dir: Path, collector_url: str, *extra: str, **env: str) -> tuple[Path, str]:
    result = run_cli(
        "run",
        "scalability-issues",
        *SCRIPTED,
        "--runs-dir",
        str(runs_dir),
        "--json",
        *extra,
        extra_env={"OTEL_EXPORTER_OTLP_ENDPOINT": collector_url, **env},
    )
    assert result.returncode == 0, result.stderr
    return Path(json.loads(result.stdout)["run_dir"]), result.stderr


def test_a_run_is_one_trace_that_matches_its_transcript(collector: Collector, runs_dir: Path) -> None:
    run_dir, stderr = _run(runs_dir, collector.url)
    transcript = load_transcript(run_dir)
    (evaluation,) = load_evaluations(run_dir)
    spans = collector.spans()
    assert collector.paths == ["/v1/traces"] and collector.content_types == ["application/x-protobuf"]
    assert stderr.strip().splitlines()[-1] == f"traces: 1 session(s), {len(spans)} span(s) sent to {collector.url}/v1/traces"
    assert collector.resources()[0]["service.name"] == "interview-sim"
    assert len({s.trace_id for s in spans}) == 1, "one trace per session"

    by_id = {s.span_id: s for s in spans}
    (root,) = [s for s in spans if not s.parent_span_id]
    root_attrs = _attrs(root.attributes)
    assert root.name == "interview scalability-issues"
    assert root_attrs["gen_ai.conversation.id"] == transcript.run_id

    turns = [s for s in spans if s.parent_span_id == root.span_id and s.name.startswith("invoke_agent ")]
    turns = [s for s in turns if _attrs(s.attributes)["gen_ai.agent.name"] != "evaluator"]
    assert len(turns) == len(transcript.messages)
    turns.sort(key=lambda s: _attrs(s.attributes)["interview_sim.turn"])
    session_calls = {c.message_index: c for c in transcript.calls if c.evaluation_id is None}
    for message, span in zip(transcript.messages, turns, strict=True):
        attrs = _attrs(span.attributes)
        assert span.name == f"invoke_agent {message.agent}"
        assert attrs["gen_ai.agent.name"] == message.agent
        assert attrs["gen_ai.operation.name"] == "invoke_agent"
        assert attrs["interview_sim.seat"] == (message.seat or message.role)
        assert attrs["gen_ai.conversation.id"] == transcript.run_id
        assert "gen_ai.output.messages" not in attrs, "message content is opt-in"
        chats = [s for s in spans if s.parent_span_id == span.span_id]
        call = session_calls.get(message.index)
        if call is None:  # the opening line, from a template
            assert chats == [] and message.source == "template"
            continue
        (chat,) = chats
        chat_attrs = _attrs(chat.attributes)
        assert chat.name == f"chat {call.ref.split(':', 1)[1]}"
        assert chat.kind == chat.SPAN_KIND_CLIENT
        assert chat_attrs["gen_ai.operation.name"] == "chat"
        assert chat_attrs["gen_ai.request.model"] == call.ref.split(":", 1)[1]
        assert chat_attrs["gen_ai.provider.name"] == "scripted"
        assert chat_attrs["gen_ai.response.model"] == call.model
        assert chat_attrs["gen_ai.usage.input_tokens"] == call.prompt_tokens == message.usage.prompt_tokens  # type: ignore[union-attr]
        assert chat_attrs["gen_ai.usage.output_tokens"] == call.completion_tokens
        assert chat_attrs["gen_ai.response.finish_reasons"] == [call.finish_reason]
        assert root.start_time_unix_nano <= chat.start_time_unix_nano <= chat.end_time_unix_nano <= root.end_time_unix_nano

    # The judge: one span, its calls as chat spans, one gen_ai.evaluation.result event per criterion and overall.
    (judge,) = [s for s in spans if s.name == "invoke_agent evaluator"]
    assert by_id[judge.parent_span_id] is root
    judge_calls = [c for c in transcript.calls if c.evaluation_id == evaluation.evaluation_id]
    judge_chats = [s for s in spans if s.parent_span_id == judge.span_id]
    assert sorted(_attrs(s.attributes)["gen_ai.usage.output_tokens"] for s in judge_chats) == sorted(
        c.completion_tokens for c in judge_calls
    )
    results = {
        _attrs(e.attributes)["gen_ai.evaluation.name"]: _attrs(e.attributes)
        for e in judge.events
        if e.name == "gen_ai.evaluation.result"
    }
    assert set(results) == {*evaluation.criteria, "overall"}
    for cid, summary in evaluation.criteria.items():
        assert results[cid]["gen_ai.evaluation.score.value"] == pytest.approx(summary.mean)
        assert "gen_ai.evaluation.explanation" not in results[cid]
    assert results["overall"]["gen_ai.evaluation.score.value"] == pytest.approx(evaluation.overall)
    total_out = sum(_attrs(s.attributes).get("gen_ai.usage.output_tokens", 0) for s in spans if s.name.startswith("chat "))
    assert total_out == transcript.usage.including_cached.total.completion_tokens


def test_contents_only_on_opt_in_and_evaluate_joins_the_same_trace(collector: Collector, runs_dir: Path) -> None:
    run_dir, _ = _run(
        runs_dir,
        collector.url,
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true",
        OTEL_SERVICE_NAME="my-evals",
        OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer t0k",
    )
    transcript = load_transcript(run_dir)
    spans = collector.spans()
    # The standard variables are the user's: their service name, their collector's credentials.
    assert collector.resources()[0]["service.name"] == "my-evals"
    assert collector.authorization == ["Bearer t0k"]
    (root,) = [s for s in spans if not s.parent_span_id]
    outputs = [
        json.loads(_attrs(s.attributes)["gen_ai.output.messages"])[0]["parts"][0]["content"]
        for s in spans
        if s.name.startswith("invoke_agent ") and _attrs(s.attributes)["gen_ai.agent.name"] != "evaluator"
    ]
    assert sorted(outputs) == sorted(m.content for m in transcript.messages)

    result = run_cli(
        "evaluate",
        str(run_dir),
        "--evaluator-model",
        "scripted:judge",
        "--judges",
        "2",
        "--otel",
        extra_env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{collector.url}/v1/traces"},
    )
    assert result.returncode == 0, result.stderr
    later = collector.requests[1:]
    new = [s for r in later for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]
    (judge,) = [s for s in new if s.name == "invoke_agent evaluator"]
    assert judge.trace_id == root.trace_id and judge.parent_span_id == root.span_id, "the grading joins the session's trace"
    assert not [s for s in new if s.name.startswith("interview ")], "the session is not sent twice"
    latest = load_evaluations(run_dir)[-1]
    assert _attrs(judge.attributes)["interview_sim.evaluation_id"] == latest.evaluation_id


def test_a_collector_that_is_down_costs_one_warning_line_and_no_failure(runs_dir: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    started = time.monotonic()
    run_dir, stderr = _run(runs_dir, closed)
    assert time.monotonic() - started < 30
    assert load_transcript(run_dir).stop_reason is not None and load_evaluations(run_dir)
    line = one_line(stderr)
    assert line == f"warning: traces not sent to {closed}/v1/traces: [Errno 111] Connection refused (the results are kept)"


def test_a_collector_that_never_answers_is_given_up_on_in_time(runs_dir: Path) -> None:
    """A collector that accepts the connection and then says nothing: the export gives up at its deadline."""
    import asyncio
    import socket

    from interview_sim.exports import export_traces
    from interview_sim.session import run_scenario

    result = asyncio.run(
        run_scenario(
            "scalability-issues", interviewer_model="scripted:default", candidate_model="scripted:weak", runs_dir=runs_dir
        )
    )
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        sent = export_traces([result.run_dir], endpoint=f"http://127.0.0.1:{silent.getsockname()[1]}/v1/traces", timeout_s=1.0)
        waited = time.monotonic() - started
    assert waited < 2.5, waited
    assert sent.error is not None and sent.spans > 0 and sent.traces == 1


def test_compare_sends_one_trace_per_cell(collector: Collector, runs_dir: Path) -> None:
    args = ["compare", "scalability-issues", "--models", "scripted:strong,scripted:weak", "--repeats", "1", "--no-pairwise"]
    args += ["--interviewer-model", "scripted:default", "--evaluator-model", "scripted:judge", "--runs-dir", str(runs_dir)]
    result = run_cli(*args, "--otel", extra_env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{collector.url}/v1/traces"})
    assert result.returncode == 0, result.stderr
    roots = [s for s in collector.spans() if not s.parent_span_id]
    conversations = sorted(_attrs(s.attributes)["gen_ai.conversation.id"] for s in roots)
    comparison = json.loads(next(runs_dir.glob("comparisons/*/comparison.json")).read_text())
    assert conversations == sorted(c["run_id"] for c in comparison["cells"])
    assert len({s.trace_id for s in roots}) == 2
    # Run again: every cell is resumed, nothing ran, so nothing is sent twice.
    again = run_cli(*args, "--otel", extra_env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{collector.url}/v1/traces"})
    assert again.returncode == 0, again.stderr
    assert len([s for s in collector.spans() if not s.parent_span_id]) == 2
