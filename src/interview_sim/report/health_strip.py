"""The run page's health strip: each judge-free figure (interview_sim.health) as a chip, with links to its turns."""

from __future__ import annotations

from typing import Any

from interview_sim.health import compute_health
from interview_sim.record import Transcript


def health_strip(transcript: Transcript, prefix: str) -> list[dict[str, Any]]:
    """The health strip: each figure as `count/total`, whether it looks healthy, and the turns to look at."""
    health = compute_health(transcript)
    rows = [
        ("stage compliance", health.stage_compliance, True, "interviewer turns in pose-problem/probe stages that ask"),
        ("truncated", health.truncated, False, "model turns that hit the token cap"),
        ("shown cut off", health.shown_cut_off, False, "turns shown ending mid-sentence"),
        ("role adherence", health.role_adherence["candidate"], True, "candidate turns that stay the candidate"),
        ("interviewer in role", health.role_adherence["interviewer"], True, "interviewer turns that stay the interviewer"),
        ("topic adherence", health.topic_adherence, True, "candidate turns on the scenario's topic"),
        ("echo", health.echo, False, "candidate turns copying the interviewer"),
    ]
    view = []
    for label, rate, higher_is_better, title in rows:
        share = rate.share
        healthy = share is None or (share >= 0.9 if higher_is_better else share == 0)
        view.append(
            {
                "label": label,
                "value": f"{rate.count}/{rate.total}" if rate.total else "–",
                "title": f"{title}; turns listed are the ones to look at",
                "healthy": healthy,
                "turns": [{"index": i, "anchor": f"{prefix}m-{i}"} for i in rate.turns]
                if not healthy or not higher_is_better
                else [],
            }
        )
    rep = health.repetition.get("candidate")
    view.append(
        {
            "label": "repetition",
            "value": f"{rep:.0%}" if rep is not None else "–",
            "title": "mean share of a candidate turn's word 4-grams the candidate already said",
            "healthy": rep is None or rep < 0.2,
            "turns": [],
        }
    )
    return view
