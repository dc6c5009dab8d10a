"""The process that runs a student's code for the grader.

This file is run as a script, never imported by student code: in the sandbox
(``coursework/sandbox.py``) it is the only file of the repository that exists, as
``/opt/coursework/worker.py``. The grader imports this module only for
:func:`encode` (the arguments it sends), :class:`Expr` and :func:`landlock_abi`.

Everything here runs in a process the student controls once the first cell has
run: a cell can patch any of it. So the grader trusts nothing the worker sends
after that (see ``coursework/protocol.py``); this file only has to be right for
honest submissions, and to set the limits before any student code runs.

Lifecycle of a worker:

1. Set the resource limits (memory, processes, file size, open files, CPU time),
   make itself the first choice of the out-of-memory killer, close every
   inherited file descriptor except the channel, and start a thread that exits the
   worker as soon as the grader's end of the request pipe closes.
2. Import matplotlib and IPython, then lock the process down with Landlock where
   the kernel has it (read only system and package folders, write only the
   scratch folder, no TCP, no signals or abstract sockets outside).
3. Answer requests. Each is one JSON line on the request pipe carrying an
   ``id`` (32 random hex digits chosen by the grader); each reply is one JSON line
   on the reply pipe that starts with the same id:

   ``{"op": "exec", "code": ...}``   run one notebook cell in an IPython shell
   ``{"op": "fork"}``                fork a child that answers ``value``/``call``/
                                     ``describe`` requests for one hidden test; it
                                     replies ``{"forked": true}``. The worker waits;
                                     when the child exits, or when the grader writes
                                     ``{"op": "end"}`` with the fork's id on the
                                     control pipe (then the worker kills the child),
                                     the worker replies ``{"ended": status}`` with
                                     the fork's id.

Before each fork, inside the sandbox, the worker kills every other process of its
PID namespace (what the cells left running: daemons, fork bombs) and waits until
they are gone (a dying process still counts against the process limit), so each
test starts from the cells' state only, with the whole process budget. Only the
worker and its children exist in that namespace: this never reaches a process
outside the sandbox.

The student's ``print`` goes to a pipe the grader drains (and bounds); ``input()``
reads ``/dev/null``. The worker never receives the hidden tests: only the inputs
a test passes to the student's function go in, and only encoded values come out.
"""

from __future__ import annotations

import ctypes
import errno
import json
import math
import os
import select
import signal
import sys
import time
import types

# --- values across the process boundary -------------------------------------

MAX_ELEMENTS = 200_000
MAX_DEPTH = 20
SWEEP_TIMEOUT = 15.0  # seconds the sweep before a test waits for the processes it killed to be gone


class Expr:
    """An argument built *in the student's process* by evaluating ``code`` (e.g. a model).

    ``code`` runs in a fresh namespace that holds only the builtins, so it must
    import what it uses: ``__import__("regcourse.depth", fromlist=["x"]).build_residual_mlp(...)``.
    Only the worker evaluates it: the grader refuses an ``Expr`` in a reply.
    """

    def __init__(self, code: str):
        self.code = code


class _Count:
    def __init__(self):
        self.left = MAX_ELEMENTS


def encode(value, _depth: int = 0, _count: _Count | None = None):
    """Encode a value as JSON-compatible data: numbers, strings, tensors, containers.

    Anything else becomes ``{"__t": "other"}`` with its type name and a short repr,
    which the grader decodes to a placeholder that compares unequal to everything.
    """
    count = _count if _count is not None else _Count()
    count.left -= 1
    if _depth > MAX_DEPTH or count.left < 0:
        return {"__t": "other", "type": "too large or too deeply nested", "repr": ""}
    if value is None or isinstance(value, bool):
        return bool(value) if value is not None else None
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, Expr):
        return {"__t": "expr", "code": value.code}
    if isinstance(value, int):
        value = int.__index__(value)
        if abs(value) < 2**62:
            return value
        if value.bit_length() > 1300:
            return {
                "__t": "other",
                "type": "int",
                "repr": f"an integer of {value.bit_length()} bits",
            }
        return {"__t": "bigint", "value": str(value)}
    if isinstance(value, float):
        value = float(value)
        return value if math.isfinite(value) else {"__t": "float", "value": repr(value)}
    if value is Ellipsis:
        return {"__t": "ellipsis"}
    mod = type(value).__module__ or ""
    if mod.startswith("torch") and type(value).__name__ in ("Tensor", "Parameter"):
        import torch

        if value.is_complex() or value.layout is not torch.strided or value.numel() > count.left:
            return {"__t": "other", "type": f"unsupported tensor {tuple(value.shape)}", "repr": ""}
        count.left -= value.numel()
        flat = value.detach().cpu().reshape(-1)
        data = [
            encode(v) if isinstance(v, float) and not math.isfinite(v) else v for v in flat.tolist()
        ]
        return {
            "__t": "tensor",
            "dtype": str(value.dtype),
            "shape": list(value.shape),
            "data": data,
        }
    if mod.startswith("numpy"):
        if type(value).__name__ == "ndarray":
            if value.dtype.kind not in "biuf" or value.size > count.left:
                return {"__t": "other", "type": f"unsupported array {value.shape}", "repr": ""}
            count.left -= value.size
            data = [
                encode(v) if isinstance(v, float) and not math.isfinite(v) else v
                for v in value.reshape(-1).tolist()
            ]
            return {
                "__t": "ndarray",
                "dtype": str(value.dtype),
                "shape": list(value.shape),
                "data": data,
            }
        if hasattr(value, "item"):
            return encode(value.item(), _depth + 1, count)
    if isinstance(value, (list, tuple)):
        items = [encode(v, _depth + 1, count) for v in value]
        return items if isinstance(value, list) else {"__t": "tuple", "items": items}
    if isinstance(value, dict):
        return {
            "__t": "dict",
            "items": [
                [encode(k, _depth + 1, count), encode(v, _depth + 1, count)]
                for k, v in value.items()
            ],
        }
    return {"__t": "other", "type": type(value).__name__, "repr": _short_repr(value)}


def _short_repr(value) -> str:
    try:
        text = repr(value)
    except BaseException:
        return "<repr failed>"
    return text if len(text) <= 200 else text[:197] + "..."


def decode(data):
    """Inverse of :func:`encode` for the grader's arguments (trusted); evaluates :class:`Expr`."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    kind = data.get("__t")
    if kind == "ellipsis":
        return Ellipsis
    if kind == "bigint":
        return int(data["value"])
    if kind == "float":
        return float(data["value"])
    if kind == "expr":
        import builtins

        return eval(str(data["code"]), {"__builtins__": builtins})
    if kind == "tuple":
        return tuple(decode(v) for v in data["items"])
    if kind == "dict":
        return {decode(k): decode(v) for k, v in data["items"]}
    if kind == "tensor":
        import torch

        dtype = getattr(torch, str(data["dtype"]).removeprefix("torch."))
        return torch.tensor([decode(v) for v in data["data"]], dtype=dtype).reshape(data["shape"])
    if kind == "ndarray":
        import numpy as np

        return np.array([decode(v) for v in data["data"]], dtype=np.dtype(data["dtype"])).reshape(
            data["shape"]
        )
    return None


# --- Landlock: an unprivileged, self-imposed file system and network sandbox ---

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = (
    444,
    445,
    446,
)  # same number on every architecture
_PR_SET_NO_NEW_PRIVS = 38
_RULE_PATH_BENEATH = 1
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 14, 1 << 15
_FS_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, or 0 where Landlock is missing (other OS, old kernel)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        version = libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def landlock_restrict(read_paths, write_paths) -> int:
    """Restrict this process (and its future children) with Landlock; return the ABI used.

    Afterwards the process can read and execute only beneath ``read_paths``, write
    only beneath ``write_paths``, open no TCP connection (ABI >= 4), and send no
    signal to, nor connect to an abstract socket of, a process outside its Landlock
    domain (ABI >= 6). Returns 0, restricting nothing, when the kernel has no Landlock.
    """
    abi = landlock_abi()
    if abi < 1:
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    fs_all = _FS_RIGHTS_BY_ABI.get(abi, (1 << 16) - 1)
    file_rights = fs_all & (
        _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV
    )
    read_rights = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
    attr = _RulesetAttr(fs_all, 0, 0)
    size = 8
    if abi >= 4:
        attr.handled_access_net, size = _NET_BIND_TCP | _NET_CONNECT_TCP, 16
    if abi >= 6:
        attr.scoped, size = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL, 24
    ruleset = libc.syscall(
        _SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0)
    )
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        rules = [(p, read_rights) for p in read_paths] + [(p, fs_all) for p in write_paths]
        for path, rights in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a folder this system does not have
            try:
                is_dir = os.path.isdir(f"/proc/self/fd/{fd}")
                beneath = _PathBeneathAttr(rights if is_dir else rights & file_rights, fd)
                if (
                    libc.syscall(
                        _SYS_ADD_RULE,
                        ctypes.c_int(ruleset),
                        ctypes.c_int(_RULE_PATH_BENEATH),
                        ctypes.byref(beneath),
                        ctypes.c_uint32(0),
                    )
                    < 0
                ):
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(_SYS_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return abi


# --- limits and file descriptors ----------------------------------------------------


def apply_limits(limits: dict, processes: bool) -> None:
    """Set hard resource limits (they can only be lowered afterwards) before any student code runs."""
    import resource

    table = [
        (resource.RLIMIT_AS, limits.get("memory")),
        (resource.RLIMIT_FSIZE, limits.get("file_size")),
        (resource.RLIMIT_NOFILE, limits.get("open_files")),
        (resource.RLIMIT_CPU, limits.get("cpu")),
        (resource.RLIMIT_CORE, 0),
    ]
    if processes:  # counted per user namespace: only meaningful inside the sandbox
        table.append((resource.RLIMIT_NPROC, limits.get("processes")))
    for which, value in table:
        if value is not None:
            value = int(value)
            soft, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(which, (value, value))
    try:
        with open(
            "/proc/self/oom_score_adj", "w"
        ) as f:  # under memory pressure, the student's processes go first
            f.write("1000")
    except OSError:
        pass


def close_other_fds(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


class _Lines:
    """Read newline-terminated lines from a file descriptor (no buffering beyond the current line)."""

    def __init__(self, fd: int):
        self.fd, self.buffer = fd, b""

    def ready(self) -> bool:
        return b"\n" in self.buffer

    def readline(self) -> bytes | None:
        while b"\n" not in self.buffer:
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line


def _error_text(exc: BaseException) -> str:
    try:
        text = f"{type(exc).__name__}: {exc}"
    except BaseException:
        text = type(exc).__name__
    return text if len(text) <= 2000 else text[:1997] + "..."


# --- the worker ---------------------------------------------------------------


class Worker:
    def __init__(self, config: dict):
        self.config = config
        fds = config["fds"]
        self.requests = _Lines(fds["req"])
        self.control = _Lines(fds["ctl"])
        self.reply_fd = fds["rep"]
        self.cell_files: set[str] = set()
        self.shell = None

    def send(self, message: dict) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:
            data = data[os.write(self.reply_fd, data) :]

    # --- setup
    def setup(self) -> str:
        os.environ.setdefault("MPLBACKEND", "Agg")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        class Shell(InteractiveShell):
            """IPython without a front end: ``%matplotlib`` keeps the Agg backend (figures are not graded)."""

            def enable_gui(self, gui=None):
                return None

            def enable_matplotlib(self, gui=None):
                matplotlib.use("Agg")
                return "agg", "agg"

        cfg = Config()
        cfg.HistoryManager.enabled = False
        cfg.InteractiveShell.colors = "NoColor"
        cfg.InteractiveShell.xmode = "Plain"
        self.shell = Shell.instance(config=cfg)
        landlock = self.config.get("landlock")
        abi = landlock_restrict(landlock["read"], landlock["write"]) if landlock else 0
        return f"landlock ABI {abi}" if abi else ""

    # --- serving
    def run(self) -> None:
        while True:
            line = self.requests.readline()
            if line is None:
                os._exit(0)
            try:
                request = json.loads(line)
                rid, op = request["id"], request["op"]
            except (ValueError, KeyError, TypeError):
                continue
            if op == "exec":
                self.exec_cell(rid, request.get("code", ""))
            elif op == "restore":
                self.restore(rid)
            elif op == "snapshot":
                self.snapshot(rid)
            elif op == "fork":
                self.fork(rid)
            elif op == "quit":
                os._exit(0)
            else:
                self.send({"id": rid, "ok": False, "error": f"no test is running for {op!r}"})

    def exec_cell(self, rid: str, code: str) -> None:
        error = None
        try:
            result = self.shell.run_cell(code, store_history=False)
            exc = result.error_before_exec or result.error_in_exec
            if exc is not None:
                error = _error_text(exc)
        except BaseException as exc:
            error = _error_text(exc)
        self.cell_files.update(self.shell.compile._filename_map)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        self.send({"id": rid, "ok": error is None, "error": error})

    # --- the shared cells of a chapter, run once (see coursework.grader.make_prefix)
    _SKIP = {
        "In",
        "Out",
        "exit",
        "quit",
        "get_ipython",
        "_",
        "__",
        "___",
        "_i",
        "_ii",
        "_iii",
        "_ih",
        "_oh",
        "_dh",
        "__builtins__",
        "__builtin__",
        "__name__",
        "__doc__",
        "__package__",
        "__loader__",
        "__spec__",
    }

    def _state(self) -> dict:
        """The namespace and the global state the cells left: random states, threads, rcParams, ...

        Only of the libraries the cells imported (a chapter without torch does not pay for it).
        """
        import random

        ns, modules = {}, {}
        for key, value in self.shell.user_ns.items():
            if (
                key in self._SKIP
                or key in self.shell.user_ns_hidden
                or (key[:1] == "_" and key.lstrip("_i").isdigit())
            ):
                continue
            if isinstance(value, types.ModuleType):
                modules[key] = value.__name__
            else:
                ns[key] = value
        state = {"python_rng": random.getstate(), "path": list(sys.path)}
        torch = sys.modules.get("torch")
        if torch is not None:
            state["torch"] = {
                "rng": torch.get_rng_state(),
                "threads": torch.get_num_threads(),
                "deterministic": torch.are_deterministic_algorithms_enabled(),
                "dtype": torch.get_default_dtype(),
            }
        if "numpy" in sys.modules:
            state["numpy_rng"] = sys.modules["numpy"].random.get_state()
        if "matplotlib" in sys.modules:
            state["rcParams"] = dict(sys.modules["matplotlib"].rcParams)
        return {"ns": ns, "modules": modules, "state": state}

    def snapshot(self, rid: str) -> None:
        """Write the state after the cells run so far into the grader's snapshot file (a memfd)."""
        fd = self.config.get("snapshot_fd")
        try:
            import zlib

            import cloudpickle

            data = zlib.compress(cloudpickle.dumps(self._state(), protocol=5), 1)
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            self.send({"id": rid, "ok": True, "size": len(data)})
        except BaseException as exc:
            self.send({"id": rid, "ok": False, "error": _error_text(exc)})

    def restore(self, rid: str) -> None:
        """Start from the shared cells' state instead of running them (the file the grader put into /tmp)."""
        path = self.config.get("prefix_file")
        try:
            import importlib
            import random
            import zlib

            import cloudpickle

            with open(path, "rb") as f:
                data = f.read()
            os.unlink(path)
            saved = cloudpickle.loads(zlib.decompress(data))
            del data
            # the cells' functions were pickled with one globals dict: make it the namespace again, so
            # that they see what later cells assign (as after running the cells themselves)
            shared = {}
            for value in saved["ns"].values():
                if isinstance(value, types.FunctionType) and value.__module__ == "__main__":
                    count, _ = shared.get(id(value.__globals__), (0, None))
                    shared[id(value.__globals__)] = (count + 1, value.__globals__)
            ns = max(shared.values(), key=lambda t: t[0])[1] if shared else {}
            ns.update(saved["ns"])
            for key, module in saved["modules"].items():
                ns[key] = importlib.import_module(module)
            self.shell.init_create_namespaces(user_ns=ns)
            self.shell.init_user_ns()
            for value in saved[
                "ns"
            ].values():  # what `describe` counts as written in a cell, as after a run
                functions = (
                    [value]
                    if isinstance(value, types.FunctionType)
                    else (list(vars(value).values()) if isinstance(value, type) else [])
                )
                for f in functions:
                    if isinstance(f, types.FunctionType) and f.__module__ == "__main__":
                        self.cell_files.add(f.__code__.co_filename)
            st = saved["state"]
            random.setstate(st["python_rng"])
            if "torch" in st:
                import torch

                torch.set_rng_state(st["torch"]["rng"])
                torch.set_num_threads(st["torch"]["threads"])
                torch.use_deterministic_algorithms(st["torch"]["deterministic"])
                torch.set_default_dtype(st["torch"]["dtype"])
            if "numpy_rng" in st:
                import numpy as np

                np.random.set_state(st["numpy_rng"])
            if "rcParams" in st:
                import matplotlib

                matplotlib.rcParams.update(st["rcParams"])
            sys.path[:] = st["path"]
            self.send({"id": rid, "ok": True})
        except BaseException as exc:
            self.send({"id": rid, "ok": False, "error": _error_text(exc)})

    def _clear_namespace(self) -> None:
        """Kill what the cells left running in this PID namespace (never outside it), and wait until it is gone.

        SIGKILL only starts a process's end: until it has torn down its memory and been reaped it
        still counts against the sandbox's process limit (``RLIMIT_NPROC``). Copies of a big
        worker (a fork bomb that does not ``exec``, after the dropout chapter's cells) take long
        for that: 61 of them, at the limit, needed 0.4 s on an idle machine, and more than 1 s
        (40 still running) under load. Forking the test before they are gone failed with EAGAIN,
        so every test of such a submission scored 0. The sweep therefore signals and reaps until
        ``/proc`` shows no process but the namespace's init and this one (init reaps what was
        re-parented to it), for at most ``SWEEP_TIMEOUT`` seconds, part of the test's time.
        """
        if not self.config.get("pidns") or os.getppid() != 1:
            return
        me, pause = os.getpid(), 0.001
        deadline = time.monotonic() + SWEEP_TIMEOUT
        while True:
            try:  # every process of the namespace but this one and its init
                os.kill(-1, signal.SIGKILL)
            except OSError:
                pass  # ESRCH: nothing else is left to signal (zombies may still be)
            reaped = False
            while True:
                try:
                    pid, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                reaped = True
            if not _other_processes(me) or time.monotonic() >= deadline:
                return
            if not reaped:  # they are still dying: wait a little longer each time, at most 50 ms
                time.sleep(pause)
                pause = min(2 * pause, 0.05)

    def fork(self, rid: str) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        self._clear_namespace()
        try:
            pid = os.fork()
        except OSError as exc:
            error = f"cannot start the test: {_error_text(exc)}"
            if exc.errno == errno.EAGAIN:
                limit = self.config.get("limits", {}).get("processes")
                error += (
                    f" (the sandbox's limit of {limit} processes and threads is used up: "
                    f"{_task_count()} threads in the notebook's own process, "
                    f"{len(_other_processes(os.getpid()))} other processes left after killing them)"
                )
            self.send({"id": rid, "ok": False, "error": error})
            return
        if pid == 0:
            try:
                os.close(self.control.fd)
                self.send({"id": rid, "forked": True})
                self.serve_child()
            finally:
                os._exit(0)
        pidfd = os.pidfd_open(pid)
        try:
            while True:
                if not self.control.ready():
                    ready, _, _ = select.select([self.control.fd, pidfd], [], [])
                    if pidfd in ready and self.control.fd not in ready:
                        break
                line = self.control.readline()
                if line is None:  # the grader is gone
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                    os._exit(0)
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if (
                    isinstance(message, dict)
                    and message.get("id") == rid
                    and message.get("op") == "end"
                ):
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                    break
            _, status = os.waitpid(pid, 0)
        finally:
            os.close(pidfd)
        os.write(self.reply_fd, b"\n")  # ends a line the child may have left half-written
        self.send({"id": rid, "ended": status})

    def serve_child(self) -> None:
        """In the forked child: answer ``value``/``call``/``describe`` requests."""
        ns = self.shell.user_ns
        while True:
            line = self.requests.readline()
            if line is None:
                os._exit(0)
            try:
                request = json.loads(line)
                rid, op = request["id"], request["op"]
            except (ValueError, KeyError, TypeError):
                continue
            name = request.get("name")
            try:
                if name not in ns:
                    self.send(
                        {
                            "id": rid,
                            "ok": False,
                            "missing": True,
                            "error": f"NameError: name {name!r} is not defined",
                        }
                    )
                    continue
                obj = ns[name]
                if op == "value":
                    for key in request.get("path", []):  # e.g. clean.extra["best_epoch"]
                        obj = (
                            obj[key] if isinstance(obj, (dict, list, tuple)) else getattr(obj, key)
                        )
                    self.send({"id": rid, "ok": True, "value": encode(obj)})
                elif op == "call":
                    if not callable(obj):
                        self.send(
                            {
                                "id": rid,
                                "ok": False,
                                "error": f"TypeError: {name!r} is not a function",
                            }
                        )
                        continue
                    args = [decode(a) for a in request.get("args", [])]
                    kwargs = {k: decode(v) for k, v in request.get("kwargs", {}).items()}
                    self.send({"id": rid, "ok": True, "value": encode(obj(*args, **kwargs))})
                elif op == "describe":
                    self.send({"id": rid, "ok": True, "describe": self.describe(obj)})
                else:
                    self.send({"id": rid, "ok": False, "error": f"unknown request {op!r}"})
            except BaseException as exc:
                try:
                    self.send({"id": rid, "ok": False, "error": _error_text(exc)})
                except BaseException:
                    os._exit(3)

    def describe(self, obj) -> dict:
        """What a function is: where its code was compiled, and every name it (and its helpers) use.

        For the ``forbid=`` check of an exercise: the function must be a plain
        function compiled from a cell of the submission (``__wrapped__`` decorators
        are followed), and the names its code and the cell functions it calls refer
        to (global names, attributes, and the ``__name__`` of the objects those
        globals hold) are returned for the grader to compare with the banned ones.
        """
        chain, f = [], obj
        for _ in range(10):
            entry = {"type": type(f).__name__}
            if isinstance(f, types.FunctionType):
                entry["file"] = f.__code__.co_filename
                entry["cell"] = f.__code__.co_filename in self.cell_files
            chain.append(entry)
            f = getattr(f, "__wrapped__", None)
            if f is None:
                break
        names: set[str] = set()
        todo, seen = [obj], set()
        while todo and len(seen) < 200:
            f = todo.pop()
            if id(f) in seen:
                continue
            seen.add(id(f))
            while (
                f is not None
                and not isinstance(f, types.FunctionType)
                and hasattr(f, "__wrapped__")
            ):
                f = f.__wrapped__
            if not isinstance(f, types.FunctionType):
                continue
            codes = [f.__code__]
            while codes:
                code = codes.pop()
                names.update(code.co_names)
                names.update(code.co_freevars)
                codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
            cells = [c.cell_contents for c in (f.__closure__ or ()) if _has_contents(c)]
            referenced = [
                f.__globals__.get(n) for n in f.__code__.co_names if n in f.__globals__
            ] + cells
            for value in referenced:
                for attr in ("__name__", "__qualname__"):
                    label = (
                        getattr(value, attr, None)
                        if not isinstance(value, (str, bytes, int, float))
                        else None
                    )
                    if isinstance(label, str):
                        names.add(label.rsplit(".", 1)[-1])
                if (
                    isinstance(value, types.FunctionType)
                    and value.__code__.co_filename in self.cell_files
                ):
                    todo.append(value)
                elif hasattr(value, "__wrapped__"):
                    todo.append(value)
        return {"chain": chain, "names": sorted(names)[:5000]}


def _other_processes(me: int) -> list[int]:
    """Processes of this PID namespace (zombies included) other than its init (1) and ``me``."""
    try:
        return [int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) not in (1, me)]
    except OSError:
        return []


def _task_count() -> int:
    """Threads of this process (each counts against RLIMIT_NPROC like a process)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


def _has_contents(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018 (reading an empty closure cell raises ValueError)
    except ValueError:
        return False
    return True


def watch_grader(fd: int) -> None:
    """Exit as soon as the grader is gone (every writer of the request pipe closed), even mid-import.

    bubblewrap's --die-with-parent ends the sandbox when the grader dies, except when the grader
    is killed while the sandbox is still being set up (before bwrap asked for that signal): then
    this thread ends the worker within moments instead of after its imports.
    """
    import threading

    def watch():
        poller = select.poll()
        poller.register(fd, 0)  # only POLLHUP, POLLERR and POLLNVAL are reported
        while True:
            for _, event in poller.poll():
                if event & select.POLLNVAL:
                    return
                if event & (select.POLLHUP | select.POLLERR):
                    os._exit(0)

    threading.Thread(target=watch, name="watch-grader", daemon=True).start()


def main(config: dict) -> None:
    fds = config["fds"]
    apply_limits(config.get("limits", {}), processes=bool(config.get("pidns")))
    close_other_fds(
        {0, 1, 2, fds["req"], fds["rep"], fds["ctl"]}
        | ({config["snapshot_fd"]} if isinstance(config.get("snapshot_fd"), int) else set())
    )
    watch_grader(fds["req"])
    worker = Worker(config)
    layer = worker.setup()
    worker.send({"id": config["ready"], "ready": True, "landlock": layer})
    worker.run()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
