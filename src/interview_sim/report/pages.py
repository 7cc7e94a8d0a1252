"""Self-contained HTML pages for runs and comparisons.

A page is one file with its CSS, JavaScript and charts (SVG) inline, so it opens offline and can be mailed.
Everything that came from a model, a transcript or a file is escaped by Jinja2's autoescaping; the page's own
script is the only one allowed to run (a Content-Security-Policy pins it by hash), and nothing is fetched at
view time. Chart geometry and evidence lookup are in `report.charts`; the templates draw them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from interview_sim.errors import RecordError
from interview_sim.files import output_target, read_text, write_output
from interview_sim.record import Transcript, load_transcript, write_text_atomic
from interview_sim.report import trust
from interview_sim.report.board import board_view, debrief_view
from interview_sim.report.charts import QuoteIndex, criterion_chart, hbar_chart, series_colours, turn_chart
from interview_sim.report.health_strip import health_strip
from interview_sim.report.records import (
    cell_run_dir,
    comparison_dir,
    resolve_target,
    run_folder,
    scenario_view,
)
from interview_sim.text import clean

if TYPE_CHECKING:
    from jinja2 import Environment

REPORT_FILE = "report.html"


@dataclass
class ReportResult:
    """What `write_report` wrote."""

    kind: Literal["run", "comparison"]
    path: Path
    run_pages: list[Path] = field(default_factory=list)
    """Comparisons: the page written for each cell's run."""


# ---------------------------------------------------------------------------------------------- public API


def write_report(
    target: str | Path, out: str | Path | None = None, *, runs_dir: str | Path = "runs", run_pages: bool = True
) -> ReportResult:
    """Write the page for a run or a comparison.

    Args:
        target: a run folder, a transcript.json, a comparison folder or comparison.json, or an id: a run id
            (looked up under `runs_dir/<scenario>/`) or a comparison id (under `runs_dir/comparisons/`).
        out: the HTML file to write (default: `report.html` in the run or comparison folder).
        runs_dir: where ids are looked up.
        run_pages: comparisons only: also write each cell's run page, so the links from the comparison work.

    Returns:
        What was written.

    Raises:
        RecordError: the target is neither a run nor a comparison, or its records cannot be read.
    """
    kind, folder = resolve_target(target, runs_dir)
    if kind == "run":
        return ReportResult("run", write_run_report(folder, out))
    return write_comparison_report(folder, out, run_pages=run_pages)


def report_text(target: str | Path, *, runs_dir: str | Path = "runs") -> str:
    """The page of a run or a comparison, as text (`report -o -`); links to cell runs are relative to the folder."""
    kind, folder = resolve_target(target, runs_dir)
    return render_run_report(folder) if kind == "run" else render_comparison_report(folder)


def render_run_report(run: str | Path) -> str:
    """The HTML page of one run (a run folder or its transcript.json). Raises RecordError."""
    run_dir = run_folder(run)
    transcript = load_transcript(run_dir)
    evaluations = [_as_dict(e) for e in _load_evaluations(run_dir)]
    context = _run_context(run_dir, transcript, evaluations)
    return _render("run.html.j2", context)


def write_run_report(run: str | Path, out: str | Path | None = None) -> Path:
    """Write a run's page (default `report.html` in the run folder) and return its path. Raises RecordError."""
    run_dir = run_folder(run)
    if out is None:
        write_text_atomic(run_dir / REPORT_FILE, render_run_report(run_dir))
        return run_dir / REPORT_FILE
    write_output(out, render_run_report(run_dir))
    return Path(out)


def render_comparison_report(comparison: str | Path, *, page_path: str | Path | None = None) -> str:
    """The HTML page of a comparison; links to cell runs are relative to `page_path` (default: in the folder)."""
    folder = comparison_dir(comparison)
    data = _load_comparison(folder)
    page = Path(page_path) if page_path is not None else folder / REPORT_FILE
    return _render("comparison.html.j2", _comparison_context(folder, data, page))


def write_comparison_report(comparison: str | Path, out: str | Path | None = None, *, run_pages: bool = True) -> ReportResult:
    """Write a comparison's page and, with `run_pages`, the page of every cell run it links to."""
    folder = comparison_dir(comparison)
    path = Path(out) if out is not None else folder / REPORT_FILE
    written: list[Path] = []
    if run_pages:
        for cell in _load_comparison(folder).get("cells", []):
            run_dir = cell_run_dir(folder, cell)
            if run_dir is not None:
                written.append(write_run_report(run_dir))
    if out is None:
        write_text_atomic(path, render_comparison_report(folder, page_path=path))
    else:
        write_output(path, render_comparison_report(folder, page_path=output_target(path)))
    return ReportResult("comparison", path, written)


# ---------------------------------------------------------------------------------------------- loading


def _as_dict(record: Any) -> dict[str, Any]:
    from pydantic import BaseModel

    if isinstance(record, BaseModel):
        return record.model_dump(mode="json")
    if isinstance(record, dict):
        return record
    raise RecordError(f"cannot render a {type(record).__name__}")


def _load_evaluations(run_dir: Path) -> list[Any]:
    from interview_sim.grading.evaluate import load_evaluations

    return list(load_evaluations(run_dir))


def _load_comparison(folder: Path) -> dict[str, Any]:
    from interview_sim.compare import load_comparison

    return _as_dict(load_comparison(folder))


# ---------------------------------------------------------------------------------------------- templates


def _printable(value: Any) -> Any:
    """Every value a template prints, without control characters (an ESC from a transcript is inert in HTML, but
    noise); markup stays markup."""
    from markupsafe import Markup

    if isinstance(value, Markup):
        return Markup(clean(value))
    return clean(value) if isinstance(value, str) else value


def _environment() -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("interview_sim.report", "templates"),
        autoescape=True,
        finalize=_printable,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=_num, minutes=_minutes, seconds=_seconds, when=_when)
    return env


def _render(template: str, context: dict[str, Any], extra_css: str | None = None) -> str:
    from markupsafe import Markup

    env = _environment()
    assert env.loader is not None
    css = env.loader.get_source(env, "report.css")[0]
    if extra_css is not None:  # a page kind's own rules, after the shared ones
        css += "\n" + env.loader.get_source(env, extra_css)[0]
    script = env.loader.get_source(env, "report.js")[0]
    # The page's own script is allowed by its hash; no other script (a planted one included) may run.
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )
    return env.get_template(template).render(**context, css=Markup(css), script=Markup(script), csp=csp, generated_at=_now_iso())


def _now_iso() -> str:
    from interview_sim.record import utc_now

    return utc_now().strftime("%Y-%m-%d %H:%M UTC")


def _missing(value: Any) -> bool:
    """Nothing to show: None, or a NaN or an infinity (a record keeps what a backend reported, however odd)."""
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _num(value: Any, digits: int = 2) -> str:
    if _missing(value):
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _minutes(value: float | None) -> str:
    if value is None or _missing(value):
        return "–"
    return f"{value:g} min"


def _seconds(value: float | None) -> str:
    if value is None or _missing(value):
        return "–"
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {seconds} s"


def _when(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


# ---------------------------------------------------------------------------------------------- run page


def _usage_rows(ledger: Any, key: Literal["model", "role", "agent"]) -> list[dict[str, Any]]:
    incl, excl = getattr(ledger.including_cached, f"by_{key}"), getattr(ledger.excluding_cached, f"by_{key}")
    return [{"name": name, "incl": u, "excl": excl.get(name)} for name, u in incl.items()]


def _usage_view(ledger: Any) -> dict[str, Any]:
    cached_calls = ledger.including_cached.total.calls - ledger.excluding_cached.total.calls
    return {
        "source": ledger.source,
        "warnings": list(ledger.warnings),
        "by_model": _usage_rows(ledger, "model"),
        "by_role": _usage_rows(ledger, "role"),
        "by_agent": _usage_rows(ledger, "agent"),
        "total": ledger.including_cached.total,
        "total_excl": ledger.excluding_cached.total,
        "cached_calls": cached_calls,
    }


def _conversation(transcript: Transcript, quotes: QuoteIndex, colours: dict[str, str], prefix: str) -> list[dict[str, Any]]:
    total = scenario_view(transcript)["time_budget_minutes"]
    out = []
    for m in transcript.messages:
        clock = None
        if m.clock is not None:
            clock = {"elapsed": m.clock.elapsed_minutes, "remaining": m.clock.remaining_minutes, "total": total}
        html, markdown = quotes.rendered(m.index)
        out.append(
            {
                "anchor": f"{prefix}m-{m.index}",
                "index": m.index,
                "role": m.role,
                "agent": m.agent,
                "model": m.model,
                "source": m.source,
                "usage": m.usage,
                "cached": m.cached,
                "latency_s": m.latency_s,
                "clock": clock,
                "stage": m.stage,
                "thinking": m.thinking,
                "cut_off": m.cut_off,
                "html": html,
                "markdown": markdown,
                "human": m.model == "human",
                "colour": colours.get(m.role, "#888"),
                # The candidate answers from the right, as in a chat app seen from the interviewer's side.
                "side": "right" if m.role == "candidate" else "left",
            }
        )
    return out


def _roles(transcript: Transcript) -> list[str]:
    preferred = ["interviewer", "candidate"]
    seen = [*transcript.agents, *(m.role for m in transcript.messages)]
    return list(dict.fromkeys([r for r in preferred if r in seen] + seen))


def _models_by_role(transcript: Transcript) -> list[dict[str, Any]]:
    """Per role, the models that were called (a judge chosen at grading time, too), else the configured one."""
    called: dict[str, dict[str, str]] = {}
    for call in transcript.calls:
        called.setdefault(call.role, {})[call.ref] = call.model
    rows = []
    for role, agent in transcript.agents.items():
        ref = agent.get("model_ref") or agent.get("model")
        name = agent.get("model_name")
        if role in called:
            ref, name = ", ".join(called[role]), ", ".join(dict.fromkeys(called[role].values()))
        if role == "interviewer" and transcript.panel:  # a panel: one row per panelist
            for seat, member in transcript.panel.items():
                ref, name = member.get("model_ref"), member.get("model_name")
                rows.append({"role": f"{role} · {seat}", "agent": member.get("name"), "ref": ref, "name": name})
            continue
        row = {"role": role, "agent": agent.get("name"), "ref": ref, "name": name if name != ref else None}
        if agent.get("model_inferred") and not ref:  # an imported seat: the model its name and the cost block agree on
            row.update(ref=name, name=None, inferred=True)
        row["given"] = bool(agent.get("model_given"))
        rows.append(row)
    known = {r["role"] for r in rows}
    for m in transcript.messages:
        if m.role not in known and m.model:
            rows.append({"role": m.role, "agent": m.agent, "ref": m.model, "name": None})
            known.add(m.role)
    return rows


def _evaluation_view(e: dict[str, Any], quotes: QuoteIndex, rubric: dict[str, Any]) -> dict[str, Any]:
    from interview_sim.grading.routing import WHOLE_TRANSCRIPT

    names = {c["id"]: c.get("name", c["id"]) for c in (e.get("rubric") or rubric).get("criteria", [])}
    details: dict[str, list[dict[str, Any]]] = {}
    for judge in e.get("judges", []):
        for grade in judge.get("criteria", []):
            details.setdefault(grade["criterion"], []).append(
                {
                    "judge": judge.get("judge"),
                    "score": grade.get("score"),
                    "expected": grade.get("expected_score"),
                    "rationale": grade.get("rationale", ""),
                    "evidence": [quotes.locate(q) for q in grade.get("evidence", [])],
                    # Routed mode: what the criterion's grade read ("turn 6" is message #5 here), else the whole transcript.
                    "graded_on": (grade.get("turns") or [WHOLE_TRANSCRIPT]) if judge.get("mode") == "routed" else None,
                }
            )
    criteria = [
        {"id": cid, "name": c.get("name") or names.get(cid, cid), "summary": c, "grades": details.get(cid, [])}
        for cid, c in e.get("criteria", {}).items()
    ]
    notes = e.get("agreement_notes") or {}
    agreement = [{"name": k.replace("_", " "), "value": v, "note": notes.get(k)} for k, v in (e.get("agreement") or {}).items()]
    started, ended = e.get("started_at"), e.get("ended_at")
    return {
        **e,
        "trust": trust.evaluation_badge(e.get("calibration")),
        "anchor": f"eval-{e.get('evaluation_id', '')}",
        "chart": criterion_chart(e, names) if e.get("criteria") else None,
        "criteria_view": criteria,
        "agreement_view": agreement,
        "duration_s": _duration(started, ended),
    }


def _duration(started: Any, ended: Any) -> float | None:
    def parse(v: Any) -> datetime | None:
        if isinstance(v, datetime):
            return v
        if isinstance(v, str):
            try:
                return datetime.fromisoformat(v)
            except ValueError:
                return None
        return None

    a, b = parse(started), parse(ended)
    return (b - a).total_seconds() if a is not None and b is not None else None


def _transcript_view(
    transcript: Transcript, evaluations: list[dict[str, Any]], prefix: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The conversation, usage and header facts of one transcript, and its evaluations' views."""
    quotes = QuoteIndex(transcript.messages, prefix)
    # Evidence first: locating the quotes decides which passages the bubbles mark.
    evals = [_evaluation_view(e, quotes, scenario_view(transcript)["rubric"]) for e in evaluations]
    roles = _roles(transcript)
    colours = series_colours(roles)
    view = {
        "prefix": prefix,
        "t": transcript,
        "roles": [{"name": r, "colour": colours[r]} for r in roles if any(m.role == r for m in transcript.messages)],
        "messages": _conversation(transcript, quotes, colours, prefix),
        "turn_chart": turn_chart(transcript.messages, colours, prefix),
        "usage": _usage_view(transcript.usage),
        "models": _models_by_role(transcript),
        "duration_s": _duration(transcript.started_at, transcript.ended_at),
        "cost_json": json.dumps(transcript.cost, indent=2, ensure_ascii=False),
        "board": board_view(transcript, prefix),
        "debriefs": debrief_view(transcript),
    }
    return view, evals


def _attachment_views(run_dir: Path, transcript: Transcript) -> list[dict[str, Any]]:
    """Records attached to the run: an imported analysis renders as a conversation of its own."""
    out: list[dict[str, Any]] = []
    inside = run_dir.resolve()
    for k, name in enumerate(transcript.attachments, 1):
        path = run_dir / name
        entry: dict[str, Any] = {"name": name, "view": None, "raw": None, "error": None}
        if not path.resolve().is_relative_to(inside):
            # A transcript names its attachments; only files of its own run folder are ever read into the page.
            entry["error"] = "not read: an attachment must be a file inside the run folder"
            out.append(entry)
            continue
        try:
            entry["view"] = _transcript_view(load_transcript(path), [], f"a{k}-")[0]
        except RecordError as exc:
            try:
                entry["raw"] = json.dumps(json.loads(read_text(path, RecordError)), indent=2, ensure_ascii=False)
            except (RecordError, ValueError, RecursionError):
                entry["error"] = str(exc)
        out.append(entry)
    return out


def _run_context(run_dir: Path, transcript: Transcript, evaluations: list[dict[str, Any]]) -> dict[str, Any]:
    view, evals = _transcript_view(transcript, evaluations, "")
    ok = [e for e in evals if e.get("status") == "ok" and e.get("overall") is not None]
    data = {"transcript": transcript.model_dump(mode="json"), "evaluations": evaluations}
    return {
        "page_kind": "run",
        "title": f"{scenario_view(transcript)['title'] or transcript.scenario_id} · run {transcript.run_id}",
        "run": view,
        "run_dir": str(run_dir),
        "scenario": scenario_view(transcript),
        "imported": transcript.imported,
        "provenance": _provenance(transcript),
        "evaluations": evals,
        "latest": ok[-1] if ok else None,
        "attachments": _attachment_views(run_dir, transcript),
        "health": health_strip(transcript, ""),
        "data": data,
        "data_name": f"{transcript.run_id}.json",
    }


def _provenance(transcript: Transcript) -> list[tuple[str, str]]:
    """An imported run's origin, field by field (whatever the importer recorded)."""
    if transcript.imported is None:
        return []
    rows = []
    for name, value in transcript.imported.model_dump(mode="json").items():
        if value in (None, "", [], {}):
            continue
        text = "; ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        rows.append((name.replace("_", " "), text))
    return rows


# ---------------------------------------------------------------------------------------------- comparison page


def _link(target: Path, page: Path) -> str:
    """A relative URL from the page to `target`, which never reads as a scheme (`javascript:`...)."""
    from urllib.parse import quote

    rel = Path(os.path.relpath(target.resolve(), page.resolve().parent)).as_posix()
    return quote(rel if rel.startswith(".") else f"./{rel}")


def _scale_of(folder: Path, cells: list[dict[str, Any]]) -> tuple[int, int]:
    """The score scale, from the first graded cell's evaluation (1-5 when none is readable)."""
    from interview_sim.errors import InterviewSimError

    for cell in cells:
        run_dir = cell_run_dir(folder, cell)
        if run_dir is None or cell.get("evaluation_id") is None:
            continue
        try:
            for e in _load_evaluations(run_dir):
                if e.evaluation_id == cell["evaluation_id"]:
                    return int(e.scale_min), int(e.scale_max)
        except InterviewSimError:
            continue
    return 1, 5


def _criterion_ci(cells: list[dict[str, Any]], criterion: str, confidence: float) -> tuple[float | None, float | None]:
    from interview_sim.grading.stats import mean_ci

    values = [c["criteria"][criterion] for c in cells if c.get("criteria", {}).get(criterion) is not None]
    summary = mean_ci(values, confidence)
    return summary.ci_low, summary.ci_high


def _criteria_chart(
    rows: list[dict[str, Any]],
    cells: list[dict[str, Any]],
    criteria: dict[str, str],
    colours: dict[str, str],
    scale: tuple[int, int],
    confidence: float,
) -> dict[str, Any]:
    """Per criterion, one bar per model (its mean over graded cells) with the confidence interval as a whisker."""
    groups = []
    for cid, name in criteria.items():
        bars = []
        for row in rows:
            graded = [c for c in cells if c["model"] == row["model"] and c["status"] == "ok"]
            low, high = _criterion_ci(graded, cid, confidence)
            bars.append(
                {
                    "name": row["model"],
                    "value": row["criteria"].get(cid),
                    "low": low,
                    "high": high,
                    "colour": colours[row["model"]],
                    "criterion": cid,
                }
            )
        groups.append({"id": cid, "name": name, "chart": hbar_chart(bars, scale=scale)})
    return {"groups": groups}


def _scope_view(
    folder: Path, page: Path, data: dict[str, Any], scope: str, colours: dict[str, str], scale: tuple[int, int]
) -> dict[str, Any]:
    rows = [r for r in data.get("leaderboard", []) if r["group"] == scope]
    groups = {g["id"]: g for g in data["request"]["groups"]}
    all_scope = scope not in groups
    cells = [c for c in data.get("cells", []) if all_scope or c["group"] == scope]
    confidence = data.get("confidence", 0.95)
    repeats = sorted({c["repeat"] for c in cells})
    matrix = []
    for model in data["request"]["models"]:
        row = []
        for r in repeats:
            found = [c for c in cells if c["model"] == model and c["repeat"] == r]
            entries = []
            for c in found:
                run_dir = cell_run_dir(folder, c)
                entries.append({**c, "href": _link(run_dir / REPORT_FILE, page) if run_dir is not None else None})
            row.append(entries)
        matrix.append({"model": model, "colour": colours[model], "repeats": row})
    overall = [
        {"name": r["model"], "value": r["mean"], "low": r["ci_low"], "high": r["ci_high"], "colour": colours[r["model"]]}
        for r in rows
    ]
    speed = [{"name": r["model"], "value": r["tokens_per_second"], "colour": colours[r["model"]]} for r in rows]
    return {
        "id": scope,
        "group": groups.get(scope),
        "rows": rows,
        "overall_chart": hbar_chart(overall, scale=scale),
        "criteria_chart": _criteria_chart(rows, cells, data.get("criteria", {}), colours, scale, confidence),
        "speed_chart": hbar_chart(speed, digits=1),
        "repeats": repeats,
        "matrix": matrix,
        "pairs": [p for p in data.get("pairs", []) if all_scope or p["group"] == scope],
    }


def _comparison_context(folder: Path, data: dict[str, Any], page: Path) -> dict[str, Any]:
    request = data["request"]
    colours = series_colours(request["models"])
    scale = _scale_of(folder, [c for c in data.get("cells", []) if c.get("status") == "ok"])
    scopes = list(dict.fromkeys(r["group"] for r in data.get("leaderboard", [])))
    cells = data.get("cells", [])
    return {
        "page_kind": "comparison",
        "title": f"{request['name']} · {'sweep' if data['kind'] == 'sweep' else 'comparison'} {data['comparison_id']}",
        "c": data,
        "request": request,
        "models": [{"name": m, "colour": colours[m]} for m in request["models"]],
        "scale": scale,
        "scopes": [_scope_view(folder, page, data, s, colours, scale) for s in scopes],
        "trust": trust.comparison_badge(cells),
        "cells_ok": sum(1 for c in cells if c["status"] == "ok"),
        "cells_failed": sum(1 for c in cells if c["status"] == "failed"),
        "data": data,
        "data_name": f"comparison-{data['comparison_id']}.json",
    }
