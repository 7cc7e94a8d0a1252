"""The user's AutoGen 0.2 corpus, in and out.

Modules:
    formats    reading each form (ChatResult JSON, Markdown export, analysis export) as plain data.
    importer   `import_transcripts`: files and folders become run folders (atomic, one per chat).
    export     `export_run`: one of our runs in an AutoGen 0.2 form.

May import: config, errors, record. Never session, models or grading.
"""

from interview_sim.autogen02.export import EXPORT_FORMATS, ExportFormat, export_run, to_chat_result, to_markdown
from interview_sim.autogen02.importer import ImportedRecord, ImportFailure, ImportReport, import_transcripts

__all__ = [
    "EXPORT_FORMATS",
    "ExportFormat",
    "ImportFailure",
    "ImportReport",
    "ImportedRecord",
    "export_run",
    "import_transcripts",
    "to_chat_result",
    "to_markdown",
]
