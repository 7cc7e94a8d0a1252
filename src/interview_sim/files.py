"""Files that come from outside (read strictly, fail in one line) and files a user names as output.

Reading: every reader of outside data goes through `read_bytes` / `read_text`: a regular file only (a device,
FIFO or socket is refused before it is opened), of bounded size, UTF-8 only; a file in another encoding, a folder
or an unreadable path is the caller's own error type, never a `UnicodeDecodeError`. For JSON, `parse_json`
(nesting too deep for the parser is an error, never a `RecursionError`); parsed data of any kind is measured by
`data_problem` (depth, lone surrogates, YAML alias bombs) in one walk that visits each object once.

Writing records: `write_text_atomic` (temporary file + rename) and `open_append` (JSON lines) never write through
a symlink; lock files (`open_lock`, `exclusive_lock`) must be regular files.

Writing a user-named output (`-o PATH`): an existing symlink writes its target, a device or FIFO is written
through (never replaced by a regular file), and a regular file is replaced atomically, keeping its mode.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from interview_sim.errors import InterviewSimError, OutputError, RecordError

MAX_FILE_BYTES = 32 * 1024 * 1024
"""The largest file any reader takes in (32 MiB): a transcript of a long run is a few MB. A bigger file is refused
before it is read, so that no file, however large, can exhaust the memory of the process that reads it (parsed
JSON takes up to 40 times its size in memory)."""

MAX_CONFIG_BYTES = 1024 * 1024
"""The largest YAML file (agents, scenarios, sweeps) read: ours are a few KB, and PyYAML's objects are heavier."""


def file_kind(mode: int) -> str:
    """What a file that is not a regular file or a folder is, for a message: "a FIFO", "a character device"..."""
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_bytes(path: Path, error: type[InterviewSimError], *, prefix: str | None = None, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. Raises `error("<prefix>: <problem>")`.

    Anything that is not a regular file (a device such as /dev/zero, a FIFO, a socket, also through a symlink) is
    refused before it is opened for reading: a device never ends and a FIFO blocks until someone writes to it.
    """
    lead = f"{path}: " if prefix is None else f"{prefix}: " if prefix else ""
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{lead}is {file_kind(st.st_mode)}, not a regular file: only regular files are read")
        if st.st_size > limit:
            raise error(f"{lead}too large to read ({st.st_size:,} bytes; the limit is {limit:,})")
        # O_NONBLOCK: if the path was swapped for a FIFO since the stat, opening it must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        raise error(f"{lead}file not found") from None
    except NotADirectoryError:
        raise error(f"{lead}file not found (a part of the path is not a folder)") from None
    except IsADirectoryError:
        raise error(f"{lead}is a folder, not a file") from None
    except OSError as exc:
        raise error(f"{lead}cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:  # a NUL character in the name
        raise error(f"{lead}cannot read: {exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{lead}is {file_kind(st.st_mode)}, not a regular file: only regular files are read")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:  # the file grew after the stat
            raise error(f"{lead}too large to read (more than {limit:,} bytes)")
        return b"".join(chunks)
    except OSError as exc:
        raise error(f"{lead}cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def read_text(path: Path, error: type[InterviewSimError], *, prefix: str | None = None, limit: int = MAX_FILE_BYTES) -> str:
    """The text of a regular file (see `read_bytes`), decoded as UTF-8 (a BOM is dropped). Raises `error`.

    Args:
        path: the file to read.
        error: the caller's error type (ConfigError, RecordError, ImportFormatError...).
        prefix: what the message starts with (default: the path; "" for none).
        limit: the largest size read, in bytes.
    """
    lead = f"{path}: " if prefix is None else f"{prefix}: " if prefix else ""
    data = read_bytes(path, error, prefix=prefix, limit=limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        hint = " (it looks like UTF-16: save it as UTF-8)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise error(f"{lead}not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}{hint}") from None


def open_lock(path: Path, error: type[InterviewSimError]) -> int:
    """Open (creating it) a lock file for `fcntl.flock`; returns the descriptor. Raises `error` when the path is a
    symlink, or not a regular file: opening a FIFO to write would wait for a reader forever."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise error(f"{path}: is a symlink: a lock file must be a regular file") from None
        raise  # no permission, a read-only or full disk: the CLI words it (exit 2 or 4)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise error(f"{path}: is {file_kind(mode)}, not a regular file: remove it and run again")
    return fd


@contextlib.contextmanager
def exclusive_lock(path: Path, error: type[InterviewSimError]) -> Iterator[None]:
    """Hold an exclusive `flock` on the lock file `path` (see `open_lock`) while the block runs, waiting for any
    other holder. The kernel drops it when the holder exits, even on kill -9."""
    import fcntl

    fd = open_lock(path, error)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


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


MAX_EXPANDED = 1_000_000
"""The most values data may hold once YAML's aliases are expanded. An alias names a node written once; nine
aliases a line over nine lines (an "alias bomb") are a few hundred bytes that expand to hundreds of millions of
values, which anything that writes or shows the data would then walk."""


def _children(item: Any) -> list[Any] | tuple[Any, ...] | None:
    if isinstance(item, dict):
        return [*item.keys(), *item.values()]
    if isinstance(item, list | tuple):
        return item
    return None


@dataclass(frozen=True, slots=True)
class DataShape:
    """What one walk of parsed data found (see `inspect_data`)."""

    depth: int
    """How deeply lists and mappings nest (a structure that contains itself: more than `MAX_DEPTH`)."""
    expanded: int
    """How many values it holds counting a shared (aliased) value once per place it appears."""
    stored: int
    """How many places for a value it holds counting a shared value once (what was written in the file)."""
    surrogate: str | None
    """A lone UTF-16 surrogate found in a string or key, escaped, or None."""


def inspect_data(value: Any) -> DataShape:
    """Measure parsed data in one iterative walk that visits each list and mapping once, however many times YAML's
    aliases make it appear (walking every appearance of an alias bomb's nodes would take hours).

    JSON's `\\ud800` escape and Python literals can carry a lone surrogate into a string: it is not a character,
    and writing or showing the string later fails (UTF-8 cannot encode it). Readers refuse such data.
    """
    measured: dict[int, tuple[int, int]] = {}  # id of a container → (depth, expanded values)
    entered: set[int] = set()
    stored = 1
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        item, finished = stack.pop()
        children = _children(item)
        if children is None:
            if isinstance(item, str) and not item.isascii() and (found := _SURROGATE.search(item)):
                return DataShape(0, 0, 0, ascii(found.group())[1:-1])
            continue
        key = id(item)
        if finished:
            depth, expanded = 1, 1
            for child in children:
                child_depth, child_expanded = measured.get(id(child), (0, 1)) if _children(child) is not None else (0, 1)
                depth, expanded = max(depth, child_depth + 1), expanded + child_expanded
            measured[key] = (depth, expanded)
            continue
        if key in measured:
            continue
        if key in entered:  # entered and not finished: the structure contains itself
            return DataShape(MAX_DEPTH + 1, 0, 0, None)
        entered.add(key)
        stored += len(children)
        stack.append((item, True))
        stack.extend((child, False) for child in children)
    depth, expanded = measured.get(id(value), (0, 1))
    return DataShape(depth, expanded, stored, None)


def data_problem(value: Any) -> str | None:
    """What makes parsed data unusable, as a phrase ("nested too deeply ...", "a lone surrogate ..."), or None."""
    shape = inspect_data(value)
    if shape.depth > MAX_DEPTH:
        return f"nested too deeply to read (more than {MAX_DEPTH} levels)"
    if shape.surrogate is not None:
        return f"holds a lone UTF-16 surrogate ({shape.surrogate}), which is not text"
    if shape.expanded > MAX_EXPANDED and shape.expanded > shape.stored:
        return f"aliases expand to more than {MAX_EXPANDED:,} values ({shape.stored:,} written): refused as an alias bomb"
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
DIR_MODE = 0o777 & ~_process_umask()
"""The mode `mkdir()` gives a new folder: a folder built by `tempfile.mkdtemp` (0700) gets it before it is renamed
into place, so imported runs are as readable as measured ones."""
"""The mode `open()` would give a new file: the temporary file's 0600 would otherwise end up on the record."""


def record_folder(folder: Path) -> Path:
    """`folder`, if records may be written into it: a folder that is a symlink is refused (writing through it would
    put a run's records wherever the link points, outside the runs folder). Raises RecordError."""
    if os.path.islink(folder):
        raise RecordError(f"{folder}: is a symlink: records are only written into a real folder (copy the run instead)")
    return folder


def write_text_atomic(path: Path, text: str, *, durable: bool = True, linked_folder: bool = False) -> None:
    """Write text through a temporary file and a rename, so a reader never sees half a file.

    The rename replaces a symlink at `path` rather than writing its target. A folder that is itself a symlink is
    refused (see `record_folder`) unless `linked_folder` (a path the user named with `-o`).

    `durable=False` skips the fsync before the rename, for a writer of many files that syncs once at the end
    (the tree import): still never half a file for a reader, only not yet on disk if the power fails.
    """
    if not linked_folder:
        record_folder(path.parent)
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


def open_append(path: Path) -> IO[str]:
    """Open a JSON-lines record (events.jsonl, records.jsonl) to append whole lines. Raises RecordError.

    Never through a symlink (of the file or of its folder), and only a regular file. A last line without its
    newline is the start of a line a killed process never finished: every reader already ignores it, and it is
    cut off here, so the next line does not join it and make the log unreadable in the middle.
    """
    record_folder(path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RecordError(f"{path}: is a symlink: records are only appended to a regular file") from None
        if exc.errno in (errno.ENXIO, errno.ENODEV, errno.EISDIR):
            raise RecordError(f"{path}: not a regular file: records are only appended to a regular file") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RecordError(f"{path}: is {file_kind(st.st_mode)}, not a regular file: records are only appended to one")
        os.set_blocking(fd, True)
        end = st.st_size
        if end and os.pread(fd, 1, end - 1) != b"\n":
            keep = end
            while keep > 0:
                start = max(0, keep - (1 << 16))
                block = os.pread(fd, keep - start, start)
                cut = block.rfind(b"\n")
                if cut >= 0:
                    keep = start + cut + 1
                    break
                keep = start
            os.ftruncate(fd, keep)
        return os.fdopen(fd, "a", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


def output_target(path: str | Path) -> Path:
    """The file that writing `path` writes: a symlink's target, else the path itself. Raises OutputError for a
    symlink that leads nowhere it could ever write (a loop of symlinks)."""
    p = Path(path)
    if not p.is_symlink():
        return p
    try:
        return p.resolve()
    except (RuntimeError, OSError) as exc:  # RuntimeError: "Symlink loop" (Python < 3.13), OSError ELOOP after
        raise OutputError(f"{path}: cannot write: a loop of symlinks ({getattr(exc, 'strerror', None) or exc})") from None


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
        write_text_atomic(target, text, linked_folder=True)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(target, stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~umask)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    return target
