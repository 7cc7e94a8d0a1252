"""Two runs on one page, side by side: turn by turn, score by score, with their differences marked.

The runs are aligned by exchange: the interviewer's turn (and any other seat that speaks before the candidate),
then the candidate's answer, one column per run. Where both interviewers said the same thing it is shown once,
across both columns; where they differ, each column has its own. Words one answer has and the other has not are
marked, and for every figure (tokens, latency, scores, health) the better side is marked. Like every page it is
one self-contained file (`report.pages._render`).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interview_sim.errors import RecordError
from interview_sim.files import write_output
from interview_sim.health import HEADLINE_LABELS, HIGHER_IS_BETTER, compute_health
from interview_sim.record import Message, Transcript, load_transcript, write_text_atomic
from interview_sim.report import trust
from interview_sim.report.pages import _duration, _load_comparison, _load_evaluations, _render
from interview_sim.report.records import cell_run_dir, comparison_dir, resolve_target, scenario_view

CANDIDATE = "candidate"
_TOKEN = re.compile(r"\s+|[^\s]+")


@dataclass
class Exchange:
    """One row of the page: what was put to the candidate, and the answer(s)."""

    prompt: list[Message]
    answer: list[Message]


def exchanges(transcript: Transcript) -> list[Exchange]:
    """The conversation as exchanges: the other seats' turns up to the candidate's, then the candidate's."""
    rows: list[Exchange] = []
    for m in transcript.messages:
        is_answer = m.role == CANDIDATE
        if not rows or (not is_answer and rows[-1].answer):
            rows.append(Exchange([], []))
        (rows[-1].answer if is_answer else rows[-1].prompt).append(m)
    return rows


def word_diff(a: str, b: str) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """Each text as (piece, differs) runs: a piece differs when the other text has no matching words there."""
    ta, tb = _TOKEN.findall(a), _TOKEN.findall(b)
    wa, wb = [t.casefold() for t in ta], [t.casefold() for t in tb]
    same_a, same_b = [False] * len(ta), [False] * len(tb)
    for block in difflib.SequenceMatcher(None, wa, wb, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            same_a[block.a + k] = same_b[block.b + k] = True

    def runs(tokens: list[str], same: list[bool]) -> list[tuple[str, bool]]:
        out: list[tuple[str, bool]] = []
        for token, kept in zip(tokens, same, strict=True):
            differs = not kept and not token.isspace()
            if out and (out[-1][1] == differs or token.isspace()):
                out[-1] = (out[-1][0] + token, out[-1][1])
            else:
                out.append((token, differs))
        return out

    return runs(ta, same_a), runs(tb, same_b)


def _better(a: float | None, b: float | None, higher: bool) -> str | None:
    """Which side is better on a figure: "a", "b", or None when equal or not comparable."""
    if a is None or b is None or a == b:
        return None
    return "a" if (a > b) == higher else "b"


def _turn(m: Message) -> dict[str, Any]:
    return {
        "index": m.index,
        "turn": m.index + 1,
        "role": m.role,
        "agent": m.agent,
        "model": m.model,
        "stage": m.stage,
        "source": m.source,
        "prompt_tokens": m.usage.prompt_tokens if m.usage else None,
        "completion_tokens": m.usage.completion_tokens if m.usage else None,
        "latency_s": m.latency_s,
        "cached": m.cached,
        "content": m.content,
    }


def _answer_view(answer: list[Message], pieces: list[tuple[str, bool]] | None) -> dict[str, Any] | None:
    if not answer:
        return None
    view = _turn(answer[-1]) if len(answer) == 1 else _turn(answer[0])
    view["pieces"] = pieces if pieces is not None else [("\n\n".join(m.content for m in answer), False)]
    view["completion_tokens"] = (
        sum((m.usage.completion_tokens if m.usage else 0) for m in answer) if view["completion_tokens"] is not None else None
    )
    view["latency_s"] = sum(m.latency_s or 0 for m in answer) if view["latency_s"] is not None else None
    return view


def _rows(a: Transcript, b: Transcript) -> list[dict[str, Any]]:
    ea, eb = exchanges(a), exchanges(b)
    rows = []
    for k in range(max(len(ea), len(eb))):
        xa = ea[k] if k < len(ea) else Exchange([], [])
        xb = eb[k] if k < len(eb) else Exchange([], [])
        prompt_a, prompt_b = [_turn(m) for m in xa.prompt], [_turn(m) for m in xb.prompt]
        same_prompt = [p["content"] for p in prompt_a] == [p["content"] for p in prompt_b] and bool(prompt_a)
        for p in [*prompt_a, *prompt_b]:
            p["pieces"] = [(p["content"], False)]
        if not same_prompt and len(prompt_a) == len(prompt_b) == 1:  # one interviewer each: mark where they differ
            prompt_a[0]["pieces"], prompt_b[0]["pieces"] = word_diff(prompt_a[0]["content"], prompt_b[0]["content"])
        text_a = "\n\n".join(m.content for m in xa.answer)
        text_b = "\n\n".join(m.content for m in xb.answer)
        pieces_a, pieces_b = word_diff(text_a, text_b) if xa.answer and xb.answer else (None, None)
        answer_a, answer_b = _answer_view(xa.answer, pieces_a), _answer_view(xb.answer, pieces_b)
        rows.append(
            {
                "number": k + 1,
                "same_prompt": same_prompt,
                "prompt_a": prompt_a,
                "prompt_b": prompt_b,
                "answer_a": answer_a,
                "answer_b": answer_b,
                "same_answer": text_a == text_b and bool(xa.answer),
                "fewer_tokens": _better(
                    answer_a["completion_tokens"] if answer_a else None,
                    answer_b["completion_tokens"] if answer_b else None,
                    False,
                ),
                "faster": _better(
                    answer_a["latency_s"] if answer_a else None, answer_b["latency_s"] if answer_b else None, False
                ),
            }
        )
    return rows


def _latest(run_dir: Path) -> dict[str, Any] | None:
    ok = [e for e in _load_evaluations(run_dir) if e.status == "ok" and e.overall is not None]
    return ok[-1].model_dump(mode="json") if ok else None


def _criteria(ea: dict[str, Any] | None, eb: dict[str, Any] | None) -> list[dict[str, Any]]:
    def grades(e: dict[str, Any] | None, cid: str) -> list[dict[str, Any]]:
        return [
            g | {"judge": j.get("judge")}
            for j in (e or {}).get("judges", [])
            for g in j.get("criteria", [])
            if g.get("criterion") == cid
        ]

    ids = list(dict.fromkeys([*(ea or {}).get("criteria", {}), *(eb or {}).get("criteria", {})]))
    rows = []
    for cid in ids:
        sa = (ea or {}).get("criteria", {}).get(cid)
        sb = (eb or {}).get("criteria", {}).get(cid)
        va, vb = (sa or {}).get("mean"), (sb or {}).get("mean")
        rows.append(
            {
                "id": cid,
                "name": (sa or sb or {}).get("name", cid),
                "a": va,
                "b": vb,
                "delta": round(vb - va, 4) if va is not None and vb is not None else None,
                "better": _better(va, vb, True),
                "grades_a": grades(ea, cid),
                "grades_b": grades(eb, cid),
            }
        )
    return rows


def _health(a: Transcript, b: Transcript) -> list[dict[str, Any]]:
    ha, hb = compute_health(a).headline(), compute_health(b).headline()
    return [
        {
            "name": HEADLINE_LABELS[key],
            "a": ha[key],
            "b": hb[key],
            "better": _better(ha[key], hb[key], HIGHER_IS_BETTER.get(key, False)),
            "higher_is_better": HIGHER_IS_BETTER.get(key, False),
        }
        for key in ha
    ]


def _models(t: Transcript, evaluation: dict[str, Any] | None) -> dict[str, str]:
    """The session seats' model references, and the judges that graded the run (not the evaluator agent's default)."""
    models = {
        role: str(agent.get("model") or agent.get("model_name") or "?")
        for role, agent in t.agents.items()
        if role != "evaluator" and not t.imported
    } or {role: name for role, name in t.models_by_role().items() if role != "evaluator"}
    if evaluation is not None:
        models["judge"] = ", ".join(evaluation.get("evaluator_models", [])) or "?"
    return models


def _side(run_dir: Path, t: Transcript, evaluation: dict[str, Any] | None, label: str) -> dict[str, Any]:
    session = [c for c in t.calls if c.evaluation_id is None]
    return {
        "label": label,
        "t": t,
        "run_dir": str(run_dir),
        "models": _models(t, evaluation),
        "evaluation": evaluation,
        "trust": trust.evaluation_badge(evaluation.get("calibration")) if evaluation else None,
        "duration_s": _duration(t.started_at, t.ended_at),
        "session_tokens": sum(c.prompt_tokens + c.completion_tokens for c in session),
        "completion_tokens": sum(c.completion_tokens for c in session),
        "latency_s": round(sum(c.latency_s for c in session), 3),
        "calls": len(session),
    }


def side_by_side_context(run_a: str | Path, run_b: str | Path) -> dict[str, Any]:
    """Everything the page shows of two runs. Raises RecordError."""
    dirs = [Path(r).parent if Path(r).is_file() else Path(r) for r in (run_a, run_b)]
    ta, tb = load_transcript(dirs[0]), load_transcript(dirs[1])
    if ta.run_id == tb.run_id:
        raise RecordError(f"{run_a} and {run_b} are the same run: name two different runs")
    ea, eb = _latest(dirs[0]), _latest(dirs[1])
    a, b = _side(dirs[0], ta, ea, "A"), _side(dirs[1], tb, eb, "B")
    warnings = []
    if ta.scenario_id != tb.scenario_id:
        warnings.append(f"different scenarios ({ta.scenario_id}, {tb.scenario_id}): turns are aligned by position only")
    if ta.seed != tb.seed:
        warnings.append(f"different seeds ({ta.seed}, {tb.seed})")
    return {
        "page_kind": "side-by-side",
        "title": f"{scenario_view(ta)['title'] or ta.scenario_id} · {ta.run_id} vs {tb.run_id}",
        "scenario": scenario_view(ta),
        "a": a,
        "b": b,
        "warnings": warnings,
        "rows": _rows(ta, tb),
        "criteria": _criteria(ea, eb),
        "overall_better": _better((ea or {}).get("overall"), (eb or {}).get("overall"), True),
        "health": _health(ta, tb),
        "data": {"a": ta.model_dump(mode="json"), "b": tb.model_dump(mode="json"), "evaluation_a": ea, "evaluation_b": eb},
        "data_name": f"{ta.run_id}-vs-{tb.run_id}.json",
    }


def render_side_by_side(run_a: str | Path, run_b: str | Path) -> str:
    """The side-by-side page of two runs (folders or transcript.json). Raises RecordError."""
    return _render("side_by_side.html.j2", side_by_side_context(run_a, run_b), extra_css="side_by_side.css")


def comparison_pair(
    comparison: str | Path, model_a: str, model_b: str, *, repeat: int = 1, group: str | None = None
) -> tuple[Path, Path]:
    """The runs of two models' cells in a comparison: the same group (scenario) and repeat, hence the same seed.

    Raises:
        RecordError: no such cells, or several groups and none named.
    """
    folder = comparison_dir(comparison)
    cells = _load_comparison(folder).get("cells", [])
    groups = list(dict.fromkeys(c.get("group") for c in cells))
    if group is None and len(groups) > 1:
        raise RecordError(
            f"{folder}: the comparison has {len(groups)} groups ({', '.join(map(str, groups))}): name one with --group"
        )
    chosen = group if group is not None else (groups[0] if groups else None)
    found = []
    for model in (model_a, model_b):
        cell = next(
            (c for c in cells if c.get("model") == model and c.get("group") == chosen and c.get("repeat") == repeat - 1), None
        )
        run = cell_run_dir(folder, cell) if cell is not None else None
        if run is None:
            models = ", ".join(dict.fromkeys(str(c.get("model")) for c in cells))
            raise RecordError(f"{folder}: no finished run of {model} in group {chosen}, repeat {repeat} (models: {models})")
        found.append(run)
    return found[0], found[1]


def side_by_side_runs(
    targets: list[str], *, runs_dir: str | Path = "runs", repeat: int = 1, group: str | None = None
) -> tuple[Path, Path, Path]:
    """RUN_A RUN_B, or COMPARISON MODEL_A MODEL_B (their cells of one repeat) → the two run folders, and the page's
    default path: `side-by-side-<run B id>.html` in run A's folder (a comparison's pair: in its folder).

    Raises:
        RecordError: the targets name no such runs or cells.
    """
    if len(targets) == 3:
        kind, folder = resolve_target(targets[0], runs_dir)
        if kind != "comparison":
            raise RecordError(f"{targets[0]}: not a comparison; name COMPARISON MODEL_A MODEL_B, or RUN_A RUN_B")
        run_a, run_b = comparison_pair(folder, targets[1], targets[2], repeat=repeat, group=group)
        return run_a, run_b, folder / f"side-by-side-{_slug(targets[1])}-vs-{_slug(targets[2])}-r{repeat}.html"
    if len(targets) == 2:
        found = [resolve_target(t, runs_dir) for t in targets]
        for target, (kind, _) in zip(targets, found, strict=True):
            if kind != "run":
                raise RecordError(f"{target}: a comparison; name COMPARISON MODEL_A MODEL_B to put two of its cells side by side")
        run_a, run_b = found[0][1], found[1][1]
        return run_a, run_b, run_a / f"side-by-side-{run_b.name}.html"
    raise RecordError(f"side by side needs RUN_A RUN_B or COMPARISON MODEL_A MODEL_B, got {len(targets)} name(s)")


def write_side_by_side(
    targets: list[str], out: str | Path | None = None, *, runs_dir: str | Path = "runs", repeat: int = 1, group: str | None = None
) -> Path:
    """Write the side-by-side page of RUN_A RUN_B, or of COMPARISON MODEL_A MODEL_B, and return its path.

    Args:
        targets: two runs (folders, transcript.json files or run ids), or a comparison and two of its models.
        out: the HTML file (default: see `side_by_side_runs`).
        runs_dir: where ids are looked up.
        repeat: a comparison's repeat to show (1 = the first).
        group: a sweep's group (needed when it has several).

    Raises:
        RecordError: the targets name no such runs or cells.
    """
    run_a, run_b, default = side_by_side_runs(targets, runs_dir=runs_dir, repeat=repeat, group=group)
    text = render_side_by_side(run_a, run_b)
    if out is None:
        write_text_atomic(default, text)
        return default
    write_output(out, text)
    return Path(out)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "model"
