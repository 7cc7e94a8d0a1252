"""Turns rendered as Markdown on the pages: safely (raw HTML, images and links stay text), with evidence marks."""

from __future__ import annotations

from dataclasses import dataclass

from interview_sim.report.markdown import render_turn


@dataclass
class Span:
    start: int
    end: int
    anchor: str


def test_markdown_is_rendered_and_raw_html_stays_text() -> None:
    text = (
        '**Strengths:**\n* **Sharding** by tenant <img src=x onerror="alert(1)">\n'
        "* ![x](http://example.com/x.png) [a](javascript:alert(1))"
    )
    html, markdown = render_turn(text, [])
    assert markdown
    assert "<strong>Strengths:</strong>" in html and html.count("<li>") == 2
    assert "<img" not in html and "&lt;img src=x" in html  # the planted tag is text
    assert "<a " not in html and "http://example.com/x.png" in html  # no image is fetched, no link is followed


def test_evidence_marks_survive_rendering_and_list_markers_stay_markers() -> None:
    text = "I would shard:\n- one schema each\n- replicas for reports"
    quote = text.index("- replicas")
    html, markdown = render_turn(text, [Span(quote, len(text), "q-1")])
    assert markdown and html.count("<li>") == 2
    assert '<mark class="evidence" id="q-1">replicas for reports</mark>' in html


def test_a_quote_straddling_markdown_falls_back_to_plain_text() -> None:
    text = "**bold part** and more"
    html, markdown = render_turn(text, [Span(4, 15, "q-1")])  # from inside the emphasis to outside it
    assert not markdown
    assert html == '**bo<mark class="evidence" id="q-1">ld part** a</mark>nd more'


def test_a_whiteboard_block_becomes_a_line_naming_its_sections() -> None:
    html, _ = render_turn("```whiteboard\n## Plan\ncache\n## Risks\nnone\n```\nMy answer.", [])
    assert "wrote on the whiteboard: Plan, Risks" in html and "```" not in html and "cache" not in html
