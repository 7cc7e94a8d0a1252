"""A results tree written the way the user's AutoGen 0.2 pipeline wrote it (FORMATS.md, form d).

Per session, in `interview_<i>/`: the ChatResult JSON (`..._<k>_<uuidA>.json`), then the `.txt` and the `.md`
written from it (`..._<k>_<uuidB>.txt`, `..._<k>_<uuidB>_<uuidC>.md`): each history entry as
`"<Role>: <content>\\n\\n"` / `"**<Role>**: <content>\\n\\n"`, role capitalised, then `chat_id`, `cost`,
`human_input`, `summary` the same way. Reviews in `review_<k>/review_interview_<i>/`, in the same three forms,
naming and embedding the interview they analyse. Used by tests/test_tree_import.py and benchmarks/bench_import.py.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOPICS = [
    ("scalability issues", "a video platform's traffic spikes"),
    ("corporate taxation", "cross-border VAT reporting"),
    ("technological challenges", "migrating a monolith"),
    ("caching strategies", "read-heavy APIs"),
]
CANDIDATES = {
    "llama3:8b-instruct-fp16": "OpenCorpo-Assistant (Llama3)",
    "gemma:2b-instruct-v1.1-fp16": "OpenCorpo-Assistant (Gemma)",
}


def _cost(i: int) -> dict[str, Any]:
    view: dict[str, Any] = {"total_cost": 0}
    for n, model in enumerate(CANDIDATES):
        prompt, completion = 300 + 17 * i + n, 120 + 5 * i + n
        view[model] = {"cost": 0, "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    return {"usage_including_cached_inference": view, "usage_excluding_cached_inference": json.loads(json.dumps(view))}


def chat_result(i: int, model: str, *, summary_line: bool = False) -> dict[str, Any]:
    """One interview session's `ChatResult.__dict__`; the first message from the interviewer (role assistant)."""
    topic, solution = TOPICS[i % len(TOPICS)]
    answer = f"Session {i}: put a queue in front of the workers and scale them on its depth."
    if summary_line:  # a model turn with a line that looks like the Markdown trailer
        answer += "\n\n**Summary**: queue, autoscale on depth, shed load past a bound."
    turns = [
        f"{CANDIDATES[model]}, whiteboard for me some {topic}. Propose a solution for {solution}. I will evaluate your"
        " answers and give my feedback, then propose a problem to you. You will answer and I will evaluate. Let's now"
        " begin. You have 30 minutes.",
        answer,
        f"Good. Problem {i}: the queue backs up for an hour every Monday. What do you do? You have 20 minutes left.",
        f"Pre-scale before Monday from last week's curve (session {i}), and alert on queue age, not length.",
    ]
    history = [
        {"content": text, "role": "assistant" if n % 2 == 0 else "user", "name": "Interviewer" if n % 2 == 0 else "Candidate"}
        for n, text in enumerate(turns)
    ]
    return {"chat_id": None, "chat_history": history, "summary": turns[-1], "cost": _cost(i), "human_input": []}


def review_result(interview_file: str, interview: dict[str, Any], k: int) -> dict[str, Any]:
    """An analysis of an interview: its first message names the interview file and embeds its history."""
    embedded = [h["content"] for h in interview["chat_history"]]
    first = (
        f"Greetings OpenCorpo Employee, We will be focusing on the analysis of the interview data named: {interview_file} \n\n\n"
        f" Content: \n\n ```md\n\n Chat History: {embedded!r} \n Summary: {interview['summary']} \n``` \n\n\n"
        " Your analysis will be evaluated and feedback will be provided. Let's get started."
    )
    turns = [
        first,
        f"**Strengths:**\n\n* Queue-based design (review {k}).\n\n**Weaknesses:**\n\n* No capacity numbers.",
        f"Agreed. Recommendation {k}: ask for the Monday peak in requests per second.",
    ]
    history = [
        {"content": text, "role": "assistant" if n % 2 == 0 else "user", "name": "Lead" if n % 2 == 0 else "Analyst"}
        for n, text in enumerate(turns)
    ]
    return {"chat_id": None, "chat_history": history, "summary": turns[-1], "cost": _cost(k), "human_input": []}


def _plain(result: dict[str, Any], bold: bool) -> str:
    mark = "**" if bold else ""
    out = "".join(f"{mark}{h['role'].capitalize()}{mark}: {h['content']}\n\n" for h in result["chat_history"])
    for key in ("chat_id", "cost", "human_input", "summary"):
        out += f"{mark}{key.capitalize()}{mark}: {result[key]}\n\n"
    return out


def write_forms(folder: Path, stem: str, result: dict[str, Any], rng: uuid.UUID | None = None) -> list[Path]:
    """The three files of one chat, as the pipeline wrote them: .json, then .txt and .md from the JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / f"{stem}_{uuid.uuid4()}.json"
    json_path.write_text(json.dumps(result, indent=4), encoding="utf-8")
    txt_stem = f"{stem}_{uuid.uuid4()}"
    txt_path = folder / f"{txt_stem}.txt"
    txt_path.write_text(_plain(result, bold=False), encoding="utf-8")
    md_path = folder / f"{txt_stem}_{uuid.uuid4()}.md"
    md_path.write_text(_plain(result, bold=True), encoding="utf-8")
    return [json_path, txt_path, md_path]


@dataclass
class Tree:
    root: Path
    sessions: dict[int, list[Path]] = field(default_factory=dict)
    """Interview number → its three files (json, txt, md)."""
    reviews: dict[int, list[Path]] = field(default_factory=dict)
    """Interview number → the files of its reviews."""
    others: list[Path] = field(default_factory=list)
    """Files that are not transcripts."""
    orphan_reviews: list[int] = field(default_factory=list)
    """Reviews of interviews whose own files are not in the tree."""

    def files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*") if p.is_file())


def write_tree(root: Path, sessions: int, *, reviews: int | None = None, orphans: int = 0, others: bool = True) -> Tree:
    """A results tree of `sessions` interviews (candidates alternate llama3 / gemma), a review of the first
    `reviews` of them, `orphans` reviews of interviews left out of the tree, and a few non-transcript files."""
    tree = Tree(root)
    models = list(CANDIDATES)
    reviews = sessions if reviews is None else reviews
    for i in range(1, sessions + orphans + 1):
        result = chat_result(i, models[i % 2], summary_line=i == 2)
        topic = TOPICS[i % len(TOPICS)][0].replace(" ", "_")
        stem = f"interview_transcript_2024-04-{10 + i % 19:02d}_{topic}_6"
        folder = root / f"interview_{i}"
        if i <= sessions:
            tree.sessions[i] = write_forms(folder, stem, result)
            named = f"interview_{i}/{tree.sessions[i][0].name}"
        else:
            named = f"interview_{i}/{stem}_{uuid.uuid4()}.json"
            tree.orphan_reviews.append(i)
        if i <= reviews or i > sessions:
            review = review_result(named, result, i)
            tree.reviews[i] = write_forms(root / f"review_{1 + i // 50}" / f"review_interview_{i}", "review_transcript", review)
    if others:
        extra = {
            "README.md": "# Results of the April batch\n\nRun with AutoGen 0.2.\n",
            "interview_1/notes.txt": "Llama3 was slow on this one.\n",
            "config.json": json.dumps({"models": list(CANDIDATES), "max_turns": 6}),
            "run.log": "2024-04-24 10:00 started\n",
            "interview_2/.DS_Store": "\x00\x01",
        }
        for name, text in extra.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            tree.others.append(path)
    return tree
