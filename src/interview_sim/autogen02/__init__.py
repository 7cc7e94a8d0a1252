"""The user's AutoGen 0.2 corpus, in and out.

Modules:
    formats    reading each form (ChatResult JSON, Markdown export, analysis export) as plain data.
    importer   building runs from parsed chats (roles, scenario, usage ledger), written atomically.
    tree       `import_transcripts`: files and whole results trees, every file accounted for, one run per
               session whatever its forms, analyses attached, idempotent (content fingerprints).
    export     `export_run`: one of our runs in an AutoGen 0.2 form.

May import: catalog, config, errors, lookup, record, version. Never session, models or grading.
"""

from interview_sim.autogen02.export import EXPORT_FORMATS, ExportFormat, export_run, to_chat_result, to_markdown
from interview_sim.autogen02.tree import (
    STATUSES,
    FileResult,
    ImportedRecord,
    ImportFailure,
    ImportReport,
    import_transcripts,
)

__all__ = [
    "EXPORT_FORMATS",
    "STATUSES",
    "ExportFormat",
    "FileResult",
    "ImportFailure",
    "ImportReport",
    "ImportedRecord",
    "export_run",
    "import_transcripts",
    "to_chat_result",
    "to_markdown",
]
