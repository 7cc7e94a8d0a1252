"""Compare models on the same prompt, and sweep topics: every cell an ordinary run, resumable, with leaderboards.

Modules:
    matrix       `compare_models` and `run_sweep`: the request and its groups of cells (the public API), and
                 `BatchOptions`, the keyword arguments they share about how a batch runs.
    execution    running the planned cells and pairs, resume, the comparison record as cells finish.
    cells        one cell (a run, then its grading) and the scheduler over concurrency slots and Ollama hosts.
    executors    where cells run: this process (the scheduler) or one Ray task per cell (`--executor ray`).
    comparison   the comparison record (`comparison.json`, `.csv`) and the leaderboard.
    corpus       `leaderboard_from_runs`: rank the models of existing runs (a filter of the runs folder) by their grades.
    lock         one command at a time per comparison (an flock beside its folder).
    journal      `records.jsonl`: cells and pairs appended as they finish, read back on top of the summary.

May import: catalog, config, errors, lookup, models, record, session, grading. Never report or cli.
"""

from interview_sim.compare.comparison import (
    ALL_GROUPS,
    COMPARISON_FILE,
    COMPARISONS_DIR,
    CSV_FILE,
    SCHEMA_VERSION,
    BatchProgress,
    Cell,
    Comparison,
    ComparisonRequest,
    GroupInfo,
    Invocation,
    LeaderboardRow,
    PairJudgment,
    comparison_dir,
    leaderboard,
    leaderboard_csv,
    load_comparison,
)
from interview_sim.compare.corpus import CorpusLeaderboard, CorpusRow, leaderboard_from_runs
from interview_sim.compare.matrix import BatchOptions, compare_models, run_sweep

__all__ = [
    "ALL_GROUPS",
    "COMPARISONS_DIR",
    "COMPARISON_FILE",
    "CSV_FILE",
    "SCHEMA_VERSION",
    "BatchOptions",
    "BatchProgress",
    "Cell",
    "Comparison",
    "ComparisonRequest",
    "CorpusLeaderboard",
    "CorpusRow",
    "GroupInfo",
    "Invocation",
    "LeaderboardRow",
    "PairJudgment",
    "compare_models",
    "comparison_dir",
    "leaderboard",
    "leaderboard_csv",
    "leaderboard_from_runs",
    "load_comparison",
    "run_sweep",
]
