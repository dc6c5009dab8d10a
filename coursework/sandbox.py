"""Start the worker that runs a submission inside a bubblewrap sandbox.

bubblewrap (``bwrap``, what Flatpak uses) builds the sandbox; this module only
chooses its options and starts it. What the worker gets:

- new user, PID, network, IPC, UTS and cgroup namespaces, no capabilities, a new
  session (no terminal to inject into), no further user namespaces, and
  ``--die-with-parent``: the worker and every process it starts live in their own
  PID namespace, which dies when the grader kills the bwrap process it started;
- a file system built from nothing: read-only binds of the system's ``/usr`` (and
  the ``/lib``, ``/bin`` links), the few ``/etc`` files the dynamic linker and fonts
  need, the Python installation, the virtual environment, the ``regcourse``
  package folder and the worker script; a private ``/proc``; a minimal ``/dev``; and
  size-limited private tmpfs folders ``/tmp`` (the scratch folder and home) and
  ``/dev/shm``. The hidden tests, the repository, the grader's environment
  variables, home folders and the host's ``/proc`` are not there at all;
- no network at all (only a loopback interface of its own);
- an unprivileged user: when the grader runs as root, bwrap itself is started as
  ``nobody`` with no supplementary groups (root's files stay root's), after a
  private mount namespace has made the folders it binds reachable for that user.

Where bubblewrap cannot work (not Linux, not installed, user namespaces disabled)
:func:`check` raises :class:`SandboxUnavailable` with a one-line reason, and the
grader refuses to run the submission unless told ``sandbox=False``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["Limits", "SandboxUnavailable", "WorkerProcess", "check", "start"]

WORKER = Path(__file__).resolve().parent / "_worker.py"
INSIDE_WORKER = "/opt/coursework/worker.py"  # where the worker script appears in the sandbox
SCRATCH = "/tmp"  # the worker's scratch folder, home and cwd in the sandbox
INSIDE_UID = 1000  # the student's uid and gid as seen inside
NOBODY = 65534  # the host uid/gid bwrap runs as when the grader is root


class SandboxUnavailable(RuntimeError):
    """No sandbox can be made on this system (the message says why, in one line)."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one worker (all processes it starts included).

    Args:
        memory: address space of each process, bytes (``RLIMIT_AS``); a chapter
            that imports torch and trains a small network needs about 1.1 GiB.
        processes: processes and threads of the worker together (``RLIMIT_NPROC``,
            counted inside the worker's own user namespace, so workers graded at the
            same time do not share it).
        file_size: largest file the worker may write, bytes (``RLIMIT_FSIZE``).
        disk: total bytes in the scratch folder ``/tmp`` and in ``/dev/shm`` (each a
            tmpfs of this size, in memory).
        output: bytes of the worker's printed output the grader keeps (the rest is
            read and dropped).
        open_files: open file descriptors per process (``RLIMIT_NOFILE``).
    """

    memory: int = 4 << 30
    processes: int = 64
    file_size: int = 64 << 20
    disk: int = 256 << 20
    output: int = 64 << 10
    open_files: int = 1024

    def __post_init__(self):
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"limits.{name} must be a positive integer, got {value!r}")


# --- can we sandbox here? -----------------------------------------------------------------

_checked: dict[tuple, str] = {}
_check_lock = threading.Lock()


def _tools() -> dict[str, str]:
    """Absolute paths of the programs the sandbox needs; SandboxUnavailable if one is missing."""
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable(f"bubblewrap needs Linux, this is {sys.platform}")
    names = ["bwrap"] + (["unshare", "setpriv", "mount", "sh"] if os.geteuid() == 0 else [])
    found = {}
    for name in names:
        path = shutil.which(name)
        if path is None:
            what = (
                "bubblewrap (bwrap) is not installed"
                if name == "bwrap"
                else (
                    f"`{name}` (util-linux) is not installed; the grader running as root needs it to start "
                    "the sandbox as an unprivileged user"
                )
            )
            raise SandboxUnavailable(what)
        found[name] = path
    return found


@functools.lru_cache(maxsize=8)
def _version(bwrap: str) -> tuple[int, ...]:
    """bubblewrap's version as numbers, e.g. (0, 8, 0); () if it does not say."""
    try:
        text = subprocess.run(
            [bwrap, "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxUnavailable(f"bubblewrap does not run: {exc}") from None
    found = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(g or 0) for g in found.groups()) if found else ()


def check() -> str:
    """The sandbox's description (e.g. ``"bubblewrap 0.8.0"``) if one can be made here; else SandboxUnavailable.

    Starts one tiny sandbox (the Python interpreter doing nothing); the answer is
    cached per process and tools, and the check is safe to call from several threads.
    """
    tools = _tools()
    key = (tuple(sorted(tools.items())), os.geteuid())
    with _check_lock:
        if key in _checked:
            return _checked[key]
        version = _version(tools["bwrap"])
        proc = start(
            [sys.executable, "-S", "-c", "pass"],
            env={},
            pass_fds=(),
            stdout=subprocess.PIPE,
            limits=Limits(),
            tools=tools,
        )
        try:
            out, _ = proc.popen.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise SandboxUnavailable("bubblewrap did not start a sandbox within 60 s") from None
        finally:
            proc.cleanup()
        if proc.popen.returncode != 0:
            lines = [ln.strip() for ln in out.decode("utf-8", "replace").splitlines() if ln.strip()]
            reason = lines[-1][:300] if lines else f"exit status {proc.popen.returncode}"
            raise SandboxUnavailable(f"bubblewrap cannot make a sandbox here: {reason}")
        description = "bubblewrap " + ".".join(map(str, version)) if version else "bubblewrap"
        if version and version < (0, 7):
            description += " (too old to limit the scratch folder's size: 0.7 or later does)"
        _checked[key] = description
        return description


# --- what the sandbox contains ------------------------------------------------------------------


def _package_folders() -> list[str]:
    """The folders of the ``regcourse`` package (found without importing it, so without torch)."""
    spec = importlib.util.find_spec("regcourse")
    return [os.path.realpath(p) for p in (spec.submodule_search_locations or [])] if spec else []


def _beneath(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def mounts() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(read-only binds as (host source, sandbox path), symlinks as (target, sandbox path))."""
    binds: list[tuple[str, str]] = []
    links: list[tuple[str, str]] = []
    for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            links.append((os.readlink(top), top))
        elif os.path.isdir(top):
            binds.append((top, top))
    for name in (
        "/etc/ld.so.cache",
        "/etc/ld.so.conf",
        "/etc/ld.so.conf.d",
        "/etc/localtime",
        "/etc/fonts",
    ):
        if os.path.islink(name):
            links.append((os.readlink(name), name))
        elif os.path.exists(name):
            binds.append((name, name))
    python = [sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix]
    for folder in python + _package_folders():
        if any(_beneath(folder, dest) for _, dest in binds):
            continue
        if os.path.isdir(folder):
            binds.append((os.path.realpath(folder), folder))
    binds.append((str(WORKER), INSIDE_WORKER))
    return binds, links


def exposed(path) -> str | None:
    """The sandbox folder through which ``path`` would be readable, or None."""
    real = os.path.realpath(path)
    for source, dest in mounts()[0]:
        if _beneath(real, os.path.realpath(source)):
            return dest
    return None


def _font_cache() -> Path | None:
    """matplotlib's font list, copied into the sandbox so the worker need not rebuild it (1-2 s)."""
    try:
        import matplotlib
        from matplotlib import font_manager
    except ImportError:
        return None
    path = (
        Path(matplotlib.get_cachedir()) / f"fontlist-v{font_manager.FontManager.__version__}.json"
    )
    return path if path.is_file() else None


# --- starting and stopping --------------------------------------------------------------------


class WorkerProcess:
    """A started sandbox (or plain process): the grader's own child, killed by :meth:`kill`."""

    def __init__(self, popen: subprocess.Popen, staging: str | None, group: bool):
        self.popen, self._staging, self._group = popen, staging, group

    def kill(self) -> None:
        """Kill the sandbox and everything in it, then reap the process.

        Only the process this grader started is signalled: in the sandbox that is the
        bwrap process, whose death ends the PID namespace and all its processes;
        without the sandbox, the process group the grader created for the worker.
        """
        if self.popen.returncode is None:  # not reaped yet, so the pid is still ours
            try:
                if self._group:
                    os.killpg(self.popen.pid, 9)
                else:
                    self.popen.kill()
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        self.cleanup()

    def cleanup(self) -> None:
        if self._staging:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None


_ROOT_SCRIPT = r"""
set -eu
stage=$1; uid=$2; gid=$3; n=$4; shift 4
i=0
while [ "$i" -lt "$n" ]; do
  mount --rbind -- "$1" "$stage/$i"
  shift; i=$((i+1))
done
exec "$SETPRIV" --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all --bounding-set=-all -- "$@"
"""


def start(
    argv: list[str],
    *,
    env: dict[str, str],
    pass_fds,
    stdout,
    limits: Limits,
    tools: dict[str, str] | None = None,
    files: dict[str, int] | None = None,
) -> WorkerProcess:
    """Start ``argv`` in a new sandbox; its stdout and stderr go to ``stdout``, stdin is /dev/null.

    ``env`` is the whole environment inside; ``pass_fds`` are inherited (at the same
    numbers); ``files`` maps sandbox paths to fds whose contents bwrap copies there.
    """
    tools = tools or _tools()
    binds, links = mounts()
    root = os.geteuid() == 0
    staging = None
    if root:  # make each source reachable for `nobody` by a bind in a private mount namespace
        staging = tempfile.mkdtemp(prefix=f"coursework-{os.getpid()}-")
        os.chmod(staging, 0o711)
        for i, (source, _) in enumerate(binds):
            entry = os.path.join(staging, str(i))
            if os.path.isdir(source):
                os.mkdir(entry, 0o755)
            else:
                os.close(os.open(entry, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644))
    version = _version(tools["bwrap"])
    args = [
        tools["bwrap"],
        "--unshare-all",
        "--unshare-user",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--uid",
        str(INSIDE_UID),
        "--gid",
        str(INSIDE_UID),
        "--hostname",
        "sandbox",
    ]
    if version >= (
        0,
        8,
    ):  # no user namespaces inside (less kernel to attack); older bwrap lacks the option
        args.append("--disable-userns")
    size = ["--size", str(limits.disk)] if version >= (0, 7) else []
    # the private tmpfs folders first, the read-only binds after them: an interpreter or a
    # venv that lives under /tmp on the host (a clone in /tmp) stays visible, bound inside
    # the fresh /tmp instead of hidden by it
    args += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        *size,
        "--tmpfs",
        SCRATCH,
        *size,
        "--tmpfs",
        "/dev/shm",
    ]
    for i, (source, dest) in enumerate(binds):
        args += ["--ro-bind", os.path.join(staging, str(i)) if root else source, dest]
    for target, dest in links:
        args += ["--symlink", target, dest]
    made = {SCRATCH}
    for dest, fd in (files or {}).items():
        parent = os.path.dirname(dest)
        chain = []
        while parent not in made and parent != "/":
            chain.append(parent)
            parent = os.path.dirname(parent)
        for folder in reversed(chain):
            args += ["--dir", folder]
            made.add(folder)
        args += ["--file", str(fd), dest]
    args += ["--remount-ro", "/", "--chdir", SCRATCH, "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    args += ["--", *argv]
    if root:
        args = [
            tools["unshare"],
            "--mount",
            "--propagation",
            "private",
            "--",
            tools["sh"],
            "-c",
            _ROOT_SCRIPT,
            "sh",
            staging,
            str(NOBODY),
            str(NOBODY),
            str(len(binds)),
            *[s for s, _ in binds],
            *args,
        ]
    fds = list(pass_fds) + list((files or {}).values())
    try:
        popen = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            pass_fds=fds,
            close_fds=True,
            start_new_session=True,
            env={"PATH": os.defpath, "SETPRIV": tools.get("setpriv", ""), "LANG": "C.UTF-8"},
        )
    except OSError as exc:
        if staging:
            shutil.rmtree(staging, ignore_errors=True)
        raise SandboxUnavailable(f"cannot start bubblewrap: {exc}") from None
    return WorkerProcess(popen, staging, group=False)


def remove_stale_staging(min_age: float = 60.0) -> int:
    """Remove the staging folders of graders that died without cleaning up (a ``kill -9``); return how many.

    A staging folder (``<tmp>/coursework-<grader pid>-*``, made by :func:`start` when the grader
    runs as root) holds only empty mount points, and is removed by the grader when its sandbox
    ends. Only folders whose grader is no longer running, older than ``min_age`` seconds and
    holding nothing but empty files and folders are removed.
    """
    import time

    removed = 0
    base = tempfile.gettempdir()
    try:
        names = os.listdir(base)
    except OSError:
        return 0
    for name in names:
        found = re.fullmatch(r"coursework-(\d+)-\w+", name)
        path = os.path.join(base, name)
        if not found or os.path.islink(path) or not os.path.isdir(path):
            continue
        try:
            os.kill(int(found[1]), 0)
            continue  # its grader is still running
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue
        try:
            info = os.lstat(path)
            if info.st_uid != os.geteuid() or time.time() - info.st_mtime < min_age:
                continue
            entries = [os.path.join(path, e) for e in os.listdir(path)]
            if any(
                os.path.islink(e)
                or (os.path.isdir(e) and os.listdir(e))
                or (os.path.isfile(e) and os.path.getsize(e))
                for e in entries
            ):
                continue
            for e in entries:
                (os.rmdir if os.path.isdir(e) else os.unlink)(e)
            os.rmdir(path)
            removed += 1
        except OSError:
            continue
    return removed


def start_unsandboxed(
    argv: list[str], *, env: dict[str, str], pass_fds, stdout, cwd: str
) -> WorkerProcess:
    """Start ``argv`` as a plain process in its own process group (``--no-sandbox``)."""
    popen = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        pass_fds=list(pass_fds),
        close_fds=True,
        start_new_session=True,
        env=env,
        cwd=cwd,
    )
    return WorkerProcess(popen, None, group=True)
