"""Grading: an evaluator agent grades a run against its scenario's rubric, and we say how far to trust it.

Modules:
    judge        the judge's prompts and the JSON schema of a grade; verbatim-evidence checks.
    grades       the grade records (per judge, per criterion) and their summaries.
    stats        confidence intervals and agreement figures (Krippendorff's alpha, Spearman).
    criterion    criterion-wise prompts and expected scores from the score tokens' probabilities.
    judge_session  the judges' bookkeeping for one evaluation: models, call records, raw outputs.
    routing      which candidate answers address which criterion (routed mode grades each criterion on those).
    modes        the ways one judge grades a run: criterion by criterion, the whole rubric at once, or routed.
    evaluate     `evaluate_run` (several judges, re-asks) and `evaluate_pairwise` (both orders).
    calibration  `calibrate`: a judge graded on hand-written control transcripts.
    bulk         `evaluate_runs`: many runs (a list or a filter), a few at a time, skipping those already graded.

May import: catalog, config, errors, lookup, models, record, version. Never session (grading reads recorded runs only).
"""

from interview_sim.grading.bulk import BulkResult, evaluate_runs, select_runs
from interview_sim.grading.calibration import CONTROLS, Calibration, ControlResult, calibrate, controls_dir
from interview_sim.grading.evaluate import (
    EVALUATION_SCHEMA_VERSION,
    CriterionGrade,
    CriterionSummary,
    Evaluation,
    JudgeGrade,
    PairwiseResult,
    PairwiseVerdict,
    RawOutput,
    agreement,
    evaluate_pairwise,
    evaluate_run,
    evaluation_path,
    load_evaluations,
    summarise,
)

__all__ = [
    "CONTROLS",
    "EVALUATION_SCHEMA_VERSION",
    "BulkResult",
    "Calibration",
    "ControlResult",
    "CriterionGrade",
    "CriterionSummary",
    "Evaluation",
    "JudgeGrade",
    "PairwiseResult",
    "PairwiseVerdict",
    "RawOutput",
    "agreement",
    "calibrate",
    "controls_dir",
    "evaluate_pairwise",
    "evaluate_run",
    "evaluate_runs",
    "evaluation_path",
    "load_evaluations",
    "select_runs",
    "summarise",
]
