"""Sessions as OpenTelemetry traces, following the GenAI semantic conventions, sent over OTLP/HTTP.

One trace per session, built from its records once the session (and its grading) is over, with the recorded
times: a root span for the interview (`gen_ai.conversation.id` = the run id), under it one `invoke_agent <name>`
span per agent turn (`gen_ai.agent.name`, the seat as `gen_ai.agent.id`), and under a model-written turn its
`chat <model>` span (`gen_ai.request.model`, `gen_ai.usage.input_tokens` / `output_tokens`, finish reason). A
grading is an `invoke_agent evaluator` span with the judges' chat spans and one `gen_ai.evaluation.result` event
per criterion and for the overall score. Message contents are left out unless the user opts in with the
conventions' own switch, `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`.

A session's trace id is derived from its run id, so a later `evaluate` adds its grading to the same trace.

Sending is bounded: one overall deadline (`timeout_s`), in a background thread the caller never waits on beyond
it; a collector that is down or slow gives a `TraceExport` with `error` set, never an exception or a delay.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from interview_sim.errors import RecordError
from interview_sim.exports.sources import require
from interview_sim.grading.evaluate import Evaluation, load_evaluations
from interview_sim.record import EVENTS_FILE, CallRecord, MessageAdded, ModelCalled, Transcript, load_transcript, read_events

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import Tracer

DEFAULT_ENDPOINT = "http://localhost:4318"
"""Where `--otel` sends when no endpoint is set: the OTLP/HTTP port of a local collector."""
DEFAULT_TIMEOUT_S = 3.0
CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
SERVICE_NAME = "interview-sim"
SCOPE = "interview_sim"


@dataclass
class TraceExport:
    """What `export_traces` sent, or why it could not."""

    endpoint: str
    traces: int = 0
    spans: int = 0
    error: str | None = None
    """None when the collector accepted every span."""
    trace_ids: list[str] = field(default_factory=list)
    """Hex trace ids, one per session, in the order given."""


def otel_endpoint(flag: bool = False) -> str | None:
    """The OTLP/HTTP traces URL to send to, from the standard variables; `flag` (`--otel`) falls back to a local
    collector. None: tracing is off."""
    traces = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if traces:
        return traces
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if base or flag:
        return (base or DEFAULT_ENDPOINT).rstrip("/") + "/v1/traces"
    return None


def _named_service() -> bool:
    attributes = os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    return bool(os.environ.get("OTEL_SERVICE_NAME", "").strip()) or "service.name=" in attributes.replace(" ", "")


def capture_content() -> bool:
    return os.environ.get(CONTENT_ENV, "").strip().lower() in ("1", "true", "yes")


def trace_id_of(run_id: str) -> int:
    """A session's trace id: the same for every export of the same run."""
    return int(hashlib.sha256(f"interview-sim trace {run_id}".encode()).hexdigest()[:32], 16) or 1


def root_span_id_of(run_id: str) -> int:
    return int(hashlib.sha256(f"interview-sim root {run_id}".encode()).hexdigest()[:16], 16) or 1


def _ns(when: datetime) -> int:
    return int(when.timestamp() * 1_000_000_000)


def _provider(ref: str) -> tuple[str, str]:
    """`llamacpp:smollm2-135m` → (`llamacpp`, `smollm2-135m`)."""
    provider, sep, name = ref.partition(":")
    return (provider, name) if sep else ("unknown", ref)


@dataclass
class _Timeline:
    """When each message and call happened: from the event log where there is one, else laid end to end."""

    message_end: dict[int, datetime]
    call_end: dict[int, datetime]


def _timeline(run_dir: Path, transcript: Transcript) -> _Timeline:
    messages: dict[int, datetime] = {}
    calls: dict[int, datetime] = {}
    if (run_dir / EVENTS_FILE).is_file():
        try:
            events = read_events(run_dir)
        except RecordError:  # a damaged log: fall back to laying the turns end to end
            events = []
        for event in events:
            if isinstance(event, MessageAdded):
                messages[event.message.index] = event.at
            elif isinstance(event, ModelCalled):
                calls[event.call.index] = event.at
    cursor = transcript.started_at
    by_message = {c.message_index: c for c in transcript.calls if c.message_index is not None and c.evaluation_id is None}
    for m in transcript.messages:
        if m.index in messages:
            cursor = messages[m.index]
            continue
        cursor = cursor + timedelta(seconds=m.latency_s or 0.001)
        messages[m.index] = cursor
        call = by_message.get(m.index)
        if call is not None and call.index not in calls:
            calls[call.index] = cursor
    return _Timeline(messages, calls)


class _Ids:
    """The SDK's id generator, told which ids a session's root span gets (derived from its run id)."""

    def __init__(self) -> None:
        import random

        self._random = random.SystemRandom()
        self.next_trace: int | None = None
        self.next_span: int | None = None

    def generate_span_id(self) -> int:
        if self.next_span is not None:
            span, self.next_span = self.next_span, None
            return span
        return self._random.getrandbits(64) or 1

    def is_trace_id_random(self) -> bool:
        return False  # a session's trace id is derived from its run id

    def generate_trace_id(self) -> int:
        if self.next_trace is not None:
            trace, self.next_trace = self.next_trace, None
            return trace
        return self._random.getrandbits(128) or 1


def _output_messages(role: str, content: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": content}], "finish_reason": "stop"}])


def _chat_span(tracer: Tracer, parent: Any, call: CallRecord, end: datetime, conversation: str, content: str | None) -> None:
    from opentelemetry import trace

    provider, name = _provider(call.ref)
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": name,
        "gen_ai.response.model": call.model,
        "gen_ai.usage.input_tokens": call.prompt_tokens,
        "gen_ai.usage.output_tokens": call.completion_tokens,
        "gen_ai.response.finish_reasons": [call.finish_reason],
        "gen_ai.conversation.id": conversation,
        "interview_sim.call.index": call.index,
        "interview_sim.cached": call.cached,
        "interview_sim.latency_s": call.latency_s,
    }
    if call.retries:
        attributes["interview_sim.retries"] = len(call.retries)
    if content is not None:
        attributes["gen_ai.output.messages"] = _output_messages("assistant", content)
    span = tracer.start_span(
        f"chat {name}",
        context=trace.set_span_in_context(parent),
        kind=trace.SpanKind.CLIENT,
        attributes=attributes,
        start_time=_ns(end - timedelta(seconds=call.latency_s)),
    )
    span.end(end_time=_ns(end))


def _session_spans(tracer: Tracer, ids: _Ids, run_dir: Path, t: Transcript, content: bool) -> Any:
    """The session's root span and its turns; returns the root (ended)."""
    from opentelemetry import trace

    timeline = _timeline(run_dir, t)
    ended = t.ended_at or max([*timeline.message_end.values(), t.started_at])
    ids.next_trace, ids.next_span = trace_id_of(t.run_id), root_span_id_of(t.run_id)
    root = tracer.start_span(
        f"interview {t.scenario_id}",
        context=trace.set_span_in_context(trace.INVALID_SPAN),
        kind=trace.SpanKind.INTERNAL,
        attributes={
            "gen_ai.operation.name": "invoke_workflow",
            "gen_ai.conversation.id": t.run_id,
            "interview_sim.scenario_id": t.scenario_id,
            "interview_sim.stop_reason": t.stop_reason or "unknown",
            "interview_sim.seed": t.seed if t.seed is not None else -1,
            "interview_sim.messages": len(t.messages),
            "interview_sim.source": t.usage.source,
            **{f"interview_sim.model.{role}": model for role, model in t.models_by_role().items() if role != "evaluator"},
        },
        start_time=_ns(t.started_at),
    )
    if t.stop_reason == "error":
        root.set_status(trace.Status(trace.StatusCode.ERROR, t.error or "the session failed"))
    by_message = {c.message_index: c for c in t.calls if c.message_index is not None and c.evaluation_id is None}
    previous = t.started_at
    for m in t.messages:
        end = timeline.message_end[m.index]
        call = by_message.get(m.index)
        call_end = timeline.call_end.get(call.index, end) if call else end
        start = min(call_end - timedelta(seconds=call.latency_s), end) if call else min(previous, end)
        seat = m.seat or m.role
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": m.agent,
            "gen_ai.agent.id": f"{t.run_id}/{seat}",
            "gen_ai.conversation.id": t.run_id,
            "interview_sim.seat": seat,
            "interview_sim.role": m.role,
            "interview_sim.turn": m.index + 1,
            "interview_sim.source": m.source,
        }
        if m.stage:
            attributes["interview_sim.stage"] = m.stage
        if m.usage is not None:
            attributes["gen_ai.usage.input_tokens"] = m.usage.prompt_tokens
            attributes["gen_ai.usage.output_tokens"] = m.usage.completion_tokens
        if content:
            attributes["gen_ai.output.messages"] = _output_messages("assistant", m.content)
        turn = tracer.start_span(
            f"invoke_agent {m.agent}",
            context=trace.set_span_in_context(root),
            kind=trace.SpanKind.INTERNAL,
            attributes=attributes,
            start_time=_ns(start),
        )
        if call is not None:
            _chat_span(tracer, turn, call, call_end, t.run_id, m.content if content else None)
        turn.end(end_time=_ns(end))
        previous = end
    root.end(end_time=_ns(max(ended, previous)))
    return root


def _evaluation_span(tracer: Tracer, parent: Any, t: Transcript, evaluation: Evaluation, content: bool) -> None:
    from opentelemetry import trace

    started = evaluation.started_at
    ended = evaluation.ended_at or started
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "evaluator",
        "gen_ai.agent.id": f"{t.run_id}/evaluator",
        "gen_ai.conversation.id": t.run_id,
        "interview_sim.evaluation_id": evaluation.evaluation_id,
        "interview_sim.evaluation.status": evaluation.status,
        "interview_sim.judges": evaluation.evaluator_models,
        "interview_sim.calibration": evaluation.calibration.state if evaluation.calibration else "not calibrated",
    }
    span = tracer.start_span(
        "invoke_agent evaluator",
        context=trace.set_span_in_context(parent),
        kind=trace.SpanKind.INTERNAL,
        attributes=attributes,
        start_time=_ns(started),
    )
    cursor = started
    for call in (c for c in t.calls if c.evaluation_id == evaluation.evaluation_id):
        cursor = min(cursor + timedelta(seconds=call.latency_s), ended) if ended > started else cursor
        _chat_span(tracer, span, call, cursor, t.run_id, None)
    scale = f"{evaluation.scale_min}-{evaluation.scale_max}"
    for cid, summary in evaluation.criteria.items():
        rationales = [g.rationale for j in evaluation.judges for g in j.criteria if g.criterion == cid]
        event: dict[str, Any] = {
            "gen_ai.evaluation.name": cid,
            "gen_ai.evaluation.score.value": float(summary.mean),
            "gen_ai.evaluation.score.label": f"{summary.mean:g} of {scale}",
            "interview_sim.evaluation_id": evaluation.evaluation_id,
        }
        if content and rationales:
            event["gen_ai.evaluation.explanation"] = "\n\n".join(rationales)
        span.add_event("gen_ai.evaluation.result", attributes=event, timestamp=_ns(ended))
    if evaluation.overall is not None:
        span.add_event(
            "gen_ai.evaluation.result",
            attributes={
                "gen_ai.evaluation.name": "overall",
                "gen_ai.evaluation.score.value": float(evaluation.overall),
                "gen_ai.evaluation.score.label": f"{evaluation.overall:g} of {scale}",
                "interview_sim.evaluation_id": evaluation.evaluation_id,
            },
            timestamp=_ns(ended),
        )
    if evaluation.status != "ok":
        span.set_status(trace.Status(trace.StatusCode.ERROR, evaluation.error or "the grading failed"))
    span.end(end_time=_ns(ended))


class _Said(logging.Handler):
    """What the exporter logged while it tried: the reason a failed export gives, in its own words."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def reason(self) -> str:
        for message in self.messages:
            found = re.search(r"\[Errno -?\d+\] [^\"')]+", message)  # a refused connection, an unknown host
            if found:
                return found.group(0).strip()
        for message in self.messages:
            if "code:" in message or "status" in message.lower():
                return " ".join(message.split())[:200]
        return "the collector did not accept the spans"


@contextmanager
def _captured(still_running: Callable[[], bool]) -> Iterator[_Said]:
    """The exporter logs each failed attempt; the caller says it once, in one line. An export still running at
    the deadline keeps the exporter's logger silenced, so its late complaints never reach the user's terminal."""
    logger = logging.getLogger("opentelemetry.exporter")
    said = _Said()
    propagate, level = logger.propagate, logger.level
    logger.addHandler(said)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        yield said
    finally:
        if not still_running():
            logger.removeHandler(said)
            logger.propagate, logger.level = propagate, level


def _send(spans: Sequence[ReadableSpan], endpoint: str, timeout_s: float) -> str | None:
    """Send the spans in one OTLP/HTTP request within `timeout_s`; the reason it failed, or None."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    outcome: list[str | None] = []

    def work(said: _Said) -> None:
        exporter = OTLPSpanExporter(endpoint=endpoint, timeout=timeout_s)
        try:
            result = exporter.export(spans)
            outcome.append(None if result == SpanExportResult.SUCCESS else said.reason())
        except Exception as exc:  # a malformed endpoint URL: reported, never raised
            outcome.append(f"{type(exc).__name__}: {exc}")
        finally:
            exporter.shutdown()  # type: ignore[no-untyped-call]

    threads: list[threading.Thread] = []
    with _captured(lambda: any(t.is_alive() for t in threads)) as said:
        worker = threading.Thread(target=work, args=(said,), name="interview-sim-otlp", daemon=True)
        threads.append(worker)
        worker.start()
        worker.join(timeout_s + 0.5)
    if worker.is_alive() or not outcome:
        return f"no answer within {timeout_s:g} s"
    return outcome[0]


def export_traces(
    runs: Sequence[str | Path],
    *,
    endpoint: str | None = None,
    session: bool = True,
    evaluations: Literal["all", "latest", "none"] = "all",
    content: bool | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> TraceExport:
    """Send one trace per run to an OTLP/HTTP collector; never raises for a collector that is down or slow.

    Args:
        runs: run folders (or transcript paths).
        endpoint: the traces URL (default: from `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`,
            else a local collector).
        session: include the session's own spans (False: only gradings, joined to the session's trace by id).
        evaluations: "all" of the run's gradings, "latest" (the newest only) or "none".
        content: include message contents and judge rationales (default: the GenAI conventions' opt-in variable).
        timeout_s: the overall deadline for sending.

    Raises:
        MissingExtraError: the OpenTelemetry SDK or its OTLP/HTTP exporter is not installed.
        RecordError: a run cannot be read.
    """
    for module in ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http.trace_exporter"):
        require(module, "opentelemetry-sdk opentelemetry-exporter-otlp-proto-http")
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from interview_sim.version import version

    url = endpoint or otel_endpoint(flag=True) or DEFAULT_ENDPOINT
    with_content = capture_content() if content is None else content
    ids = _Ids()
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        # Our service name unless the user named one (OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES), which
        # Resource.create would otherwise let ours override.
        resource=Resource.create({"service.version": version()}).merge(
            Resource({} if _named_service() else {"service.name": SERVICE_NAME})
        ),
        id_generator=ids,  # type: ignore[arg-type]  # duck-typed: the SDK calls only these three methods
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(SCOPE, version())
    result = TraceExport(endpoint=url)
    for run in runs:
        run_dir = Path(run) if Path(run).is_dir() else Path(run).parent
        t = load_transcript(run_dir)
        graded = [] if evaluations == "none" else load_evaluations(run_dir)
        if evaluations == "latest":
            graded = graded[-1:]
        if session:
            parent = _session_spans(tracer, ids, run_dir, t, with_content)
        else:
            parent = trace.NonRecordingSpan(
                trace.SpanContext(
                    trace_id_of(t.run_id), root_span_id_of(t.run_id), is_remote=True, trace_flags=trace.TraceFlags(1)
                )
            )
        for evaluation in graded:
            _evaluation_span(tracer, parent, t, evaluation, with_content)
        result.traces += 1
        result.trace_ids.append(f"{trace_id_of(t.run_id):032x}")
    spans = memory.get_finished_spans()
    provider.shutdown()
    result.spans = len(spans)
    if spans:
        result.error = _send(spans, url, timeout_s)
    return result
