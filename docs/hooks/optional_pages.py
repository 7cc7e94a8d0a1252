"""MkDocs hook: leave out of the navigation the pages that other work adds and that are not in this checkout yet.

The nav lists them (`judge-validity.md`, `integrations.md`); a strict build would fail on a nav entry whose file
is missing, and a placeholder page would be worse than none. Each optional entry is kept only when its file exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

OPTIONAL = {"judge-validity.md", "integrations.md"}


def _keep(entry: Any, docs: Path) -> bool:
    if isinstance(entry, dict):
        (value,) = entry.values()
        if isinstance(value, str):
            return value not in OPTIONAL or (docs / value).is_file()
    return True


def _prune(entries: list[Any], docs: Path) -> list[Any]:
    kept = []
    for entry in entries:
        if isinstance(entry, dict):
            (title, value), *_ = entry.items()
            if isinstance(value, list):
                entry = {title: _prune(value, docs)}
        if _keep(entry, docs):
            kept.append(entry)
    return kept


def on_config(config: Any, **_: Any) -> Any:
    if config.get("nav"):
        config["nav"] = _prune(config["nav"], Path(config["docs_dir"]))
    return config
