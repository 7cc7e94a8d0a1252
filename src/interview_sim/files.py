"""Files that come from outside (read strictly, fail in one line) and files a user names as output.

Reading: every reader of outside data goes through `read_text` (UTF-8 only; a file in another encoding, a
folder or an unreadable path is the caller's own error type, never a `UnicodeDecodeError`) and, for JSON,
`parse_json` (nesting too deep for the parser is an error, never a `RecursionError`).

Writing a user-named output (`-o PATH`): an existing symlink writes its target, a device or FIFO is written
through (never replaced by a regular file), and a regular file is replaced atomically, keeping its mode.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

from interview_sim.errors import InterviewSimError, OutputError


def read_text(path: Path, error: type[InterviewSimError], *, prefix: str | None = None) -> str:
    """The file's text, decoded as UTF-8 (a BOM is dropped). Raises `error("<prefix>: <problem>")`.

    Args:
        path: the file to read.
        error: the caller's error type (ConfigError, RecordError, ImportFormatError...).
        prefix: what the message starts with (default: the path; "" for none).
    """
    lead = f"{path}: " if prefix is None else f"{prefix}: " if prefix else ""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{lead}file not found") from None
    except IsADirectoryError:
        raise error(f"{lead}is a folder, not a file") from None
    except OSError as exc:
        raise error(f"{lead}cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:  # a NUL character in the name
        raise error(f"{lead}cannot read: {exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        hint = " (it looks like UTF-16: save it as UTF-8)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise error(f"{lead}not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}{hint}") from None


def exists(path: Path) -> bool:
    """`Path.exists()`, but False for a path the system cannot look up at all (a name too long, a NUL character), which
    `Path.exists()` raises for: such paths come from file contents (a scenario's agent file, an attachment)."""
    try:
        return path.exists()
    except (OSError, ValueError):  # ValueError: a NUL character in the name
        return False


def is_dir(path: Path) -> bool:
    """`Path.is_dir()`, but False where `exists` is."""
    try:
        return path.is_dir()
    except (OSError, ValueError):  # ValueError: a NUL character in the name
        return False


def is_file(path: Path) -> bool:
    """`Path.is_file()`, but False where `exists` is."""
    try:
        return path.is_file()
    except (OSError, ValueError):  # ValueError: a NUL character in the name
        return False


MAX_DEPTH = 64
"""Deepest nesting of lists and mappings a record or config may have. Ours are under 10 deep; deeper data would
pass validation (free-form fields) and then fail later, when it is written or shown (pydantic stops at ~250)."""


_SURROGATE = re.compile("[\ud800-\udfff]")


def inspect_data(value: Any) -> tuple[int, str | None]:
    """(how deeply lists and mappings nest, a lone UTF-16 surrogate found in a string or key, or None): one walk.

    JSON's `\\ud800` escape and Python literals can carry a lone surrogate into a string: it is not a character,
    and writing or showing the string later fails (UTF-8 cannot encode it). Readers refuse such data.
    """
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and (found := _SURROGATE.search(item)):
                return deepest, ascii(found.group())[1:-1]
            continue
        if isinstance(item, dict):
            children: Any = [*item.keys(), *item.values()]
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if level <= MAX_DEPTH:
            stack.extend((child, level + 1) for child in children)
    return deepest, None


def data_problem(value: Any) -> str | None:
    """What makes parsed data unusable, as a phrase ("nested too deeply ...", "a lone surrogate ..."), or None."""
    deepest, surrogate = inspect_data(value)
    if deepest > MAX_DEPTH:
        return f"nested too deeply to read (more than {MAX_DEPTH} levels)"
    if surrogate is not None:
        return f"holds a lone UTF-16 surrogate ({surrogate}), which is not text"
    return None


def parse_json(text: str, error: type[InterviewSimError], where: str) -> Any:
    """`json.loads`, with every failure as `error`: invalid JSON, or nested deeper than `MAX_DEPTH`."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{where}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        data = None
    except ValueError as exc:  # an integer longer than Python converts (4300 digits)
        raise error(f"{where}: not readable JSON ({exc.args[0].split(':')[0]})") from None
    else:
        problem = data_problem(data)
        if problem is None:
            return data
        raise error(f"{where}: JSON {problem}")
    raise error(f"{where}: JSON nested too deeply to read (more than {MAX_DEPTH} levels)")


def _process_umask() -> int:
    # Reading the umask means setting it; done once, at import, before any thread writes files.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_process_umask()
"""The mode `open()` would give a new file: the temporary file's 0600 would otherwise end up on the record."""


def write_text_atomic(path: Path, text: str, *, durable: bool = True) -> None:
    """Write text through a temporary file and a rename, so a reader never sees half a file.

    `durable=False` skips the fsync before the rename, for a writer of many files that syncs once at the end
    (the tree import): still never half a file for a reader, only not yet on disk if the power fails.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def output_target(path: str | Path) -> Path:
    """The file that writing `path` writes: a symlink's target, else the path itself."""
    p = Path(path)
    return p.resolve() if p.is_symlink() else p


def write_output(path: str | Path, text: str) -> Path:
    """Write a user-named output file; returns the file actually written (a symlink's target).

    Raises:
        OutputError: the path is a folder, or cannot be written.
    """
    target = output_target(path)
    try:
        st = target.stat()
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{path}: is a folder; name a file to write")
        if st is not None and not stat.S_ISREG(st.st_mode):
            # A device, FIFO or socket: write through it, as a shell redirection would.
            with target.open("w", encoding="utf-8") as fh:
                fh.write(text)
            return target
        write_text_atomic(target, text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(target, stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~umask)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    return target
