"""The session: a scripted whiteboard interview between models, run by AutoGen and recorded as it happens.

Modules, each importing only those above it:
    whiteboard       the shared board: titled sections, the fenced-block parser, changes, the bounded prompt view.
    state            `SessionState`: the simulated clock, the script position (stages, seats) and the stop rule.
    recorder         `SessionRecorder`: every call and message into the transcript and `events.jsonl` as it
                     happens; `cut_back_to_sentence` for an answer the token cap cut off.
    panel            a panel's wrap-up debriefs (hire / lean hire / lean no / no, and one reason).
    autogen_adapter  the only module that imports autogen_* (AutoGen is in maintenance mode): our models as
                     AutoGen clients, the seats' notes, the whiteboard tools, the stop condition, the team.
    run              `prepare_scenario` and `run_scenario`: models per seat, the team, the recorded run
                     (the AutoGen adapter is imported inside the function that runs a session).

Exports the public API of a session (`run_scenario`, `prepare_scenario`, `RunResult`) and the pieces other
features read: the event sinks, the state and recorder, the board. Importing this package never imports AutoGen.

May import: catalog, config, errors, models, record, version. Never grading, compare, replay, report or cli.
"""

from interview_sim.session.recorder import EventSink, SessionRecorder, TextSink, cut_back_to_sentence
from interview_sim.session.run import ModelFactory, RunResult, prepare_scenario, run_scenario
from interview_sim.session.state import Reading, SessionState, agent_name
from interview_sim.session.whiteboard import Board, board_note, parse_blocks, render_block

__all__ = [
    "Board",
    "EventSink",
    "ModelFactory",
    "Reading",
    "RunResult",
    "SessionRecorder",
    "SessionState",
    "TextSink",
    "agent_name",
    "board_note",
    "cut_back_to_sentence",
    "parse_blocks",
    "prepare_scenario",
    "render_block",
    "run_scenario",
]
