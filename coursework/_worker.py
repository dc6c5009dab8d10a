"""The process that runs a student's code for the grader.

This file is run as a script (``python -I _worker.py CONFIG``), never imported
by student code: in isolated mode (``-I``) neither the repository nor this
folder is on ``sys.path``, so ``import coursework`` fails in here and the hidden
tests cannot be imported. The grader (``coursework.grader``) imports this module
only for :func:`encode`, :func:`decode` and :func:`landlock_abi`.

Lifecycle of a worker:

1. Move the protocol off stdin/stdout (the student's ``print`` goes to a log
   file, ``input()`` reads ``/dev/null``).
2. Import matplotlib and IPython, then lock the process down with
   Landlock where the kernel has it (read only system and package folders,
   write only the scratch folder, no TCP, no signals to processes outside).
3. Answer requests, one JSON object per line:

   ``{"op": "exec", "code": ...}``   run one notebook cell in an IPython shell
   ``{"op": "fork"}``                fork a child that answers ``value``/``call``
                                     requests for one hidden test, then ``end``s;
                                     the worker waits for it and reports
                                     ``{"ended": status}``, also when the grader
                                     killed the child at its time limit.

The worker never receives the hidden tests: only the inputs a test passes to
the student's function go in, and only encoded values (numbers, strings,
tensors, containers) come out.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import sys

# --- values across the process boundary -------------------------------------

MAX_ELEMENTS = 1_000_000
MAX_DEPTH = 20


class Expr:
    """An argument built *in the student's process* by evaluating ``code`` (e.g. a model).

    ``code`` runs in a fresh namespace that holds only the builtins, so it must
    import what it uses: ``__import__("regcourse.depth", fromlist=["x"]).build_residual_mlp(...)``.
    Only the worker evaluates it: the grader refuses an ``Expr`` in a reply.
    """

    def __init__(self, code: str):
        self.code = code


def encode(value, _depth: int = 0):
    """Encode a value as JSON-compatible data: numbers, strings, tensors, containers.

    Anything else becomes ``{"__t": "other"}`` with its type name, which the grader
    decodes to an :class:`Other` that compares unequal to everything.
    """
    if _depth > MAX_DEPTH:
        return {"__t": "other", "type": "too deeply nested", "repr": ""}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Expr):
        return {"__t": "expr", "code": value.code}
    if isinstance(value, int):
        return value if abs(value) < 2**62 else {"__t": "bigint", "value": str(value)}
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__t": "float", "value": repr(value)}
    if value is Ellipsis:
        return {"__t": "ellipsis"}
    mod = type(value).__module__ or ""
    if mod.startswith("torch") and type(value).__name__ in ("Tensor", "Parameter"):
        import torch

        if value.is_complex() or value.layout is not torch.strided or value.numel() > MAX_ELEMENTS:
            return {"__t": "other", "type": f"unsupported tensor {tuple(value.shape)}", "repr": ""}
        flat = value.detach().cpu().reshape(-1)
        data = [encode(v) if isinstance(v, float) and not math.isfinite(v) else v for v in flat.tolist()]
        return {"__t": "tensor", "dtype": str(value.dtype), "shape": list(value.shape), "data": data}
    if mod.startswith("numpy"):
        if type(value).__name__ == "ndarray":
            if value.dtype.kind not in "biuf" or value.size > MAX_ELEMENTS:
                return {"__t": "other", "type": f"unsupported array {value.shape}", "repr": ""}
            data = [encode(v, _depth + 1) for v in value.reshape(-1).tolist()]
            return {"__t": "ndarray", "dtype": str(value.dtype), "shape": list(value.shape), "data": data}
        if hasattr(value, "item"):
            return encode(value.item(), _depth + 1)
    if isinstance(value, (list, tuple)):
        items = [encode(v, _depth + 1) for v in value]
        return items if type(value) is list else {"__t": "tuple", "items": items}
    if isinstance(value, dict):
        return {"__t": "dict", "items": [[encode(k, _depth + 1), encode(v, _depth + 1)] for k, v in value.items()]}
    return {"__t": "other", "type": type(value).__name__, "repr": _short_repr(value)}


def _short_repr(value) -> str:
    try:
        text = repr(value)
    except BaseException:  # noqa: BLE001 - a student's __repr__ may raise anything
        return "<repr failed>"
    return text if len(text) <= 200 else text[:197] + "..."


class Other:
    """A value of a type the protocol does not carry; equal to nothing."""

    def __init__(self, type_name: str, text: str):
        self.type_name, self.text = type_name, text

    def __repr__(self) -> str:
        return f"<{self.type_name}: {self.text}>" if self.text else f"<{self.type_name}>"

    def __eq__(self, other):
        return False

    __hash__ = None


def decode(data, allow_expr: bool = False):
    """Inverse of :func:`encode`; builds only numbers, strings, containers, tensors, arrays.

    ``allow_expr`` (the worker only) evaluates :class:`Expr` arguments; the grader never
    sets it, so nothing the student's process sends is ever evaluated.
    """
    if isinstance(data, list):
        return [decode(v, allow_expr) for v in data]
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
        if not allow_expr:
            return Other("expr", "refused")
        import builtins

        return eval(str(data["code"]), {"__builtins__": builtins})  # noqa: S307 - the grader's own code, in the student's process
    if kind == "tuple":
        return tuple(decode(v, allow_expr) for v in data["items"])
    if kind == "dict":
        out = {}
        for k, v in data["items"]:
            k = decode(k, allow_expr)
            out[k if isinstance(k, (str, int, float, bool, tuple)) or k is None else repr(k)] = decode(v, allow_expr)
        return out
    if kind == "tensor":
        import torch

        dtype = getattr(torch, str(data["dtype"]).removeprefix("torch."), None)
        if not isinstance(dtype, torch.dtype):
            return Other("tensor", f"unknown dtype {data['dtype']!r}")
        values = [decode(v) for v in data["data"]]
        return torch.tensor(values, dtype=dtype).reshape([int(s) for s in data["shape"]])
    if kind == "ndarray":
        import numpy as np

        values = [decode(v) for v in data["data"]]
        return np.array(values, dtype=np.dtype(str(data["dtype"]))).reshape([int(s) for s in data["shape"]])
    if kind == "other":
        return Other(str(data.get("type", "?")), str(data.get("repr", "")))
    return Other("dict", "malformed value")


# --- Landlock: an unprivileged, self-imposed file system and network sandbox ---

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # same number on every architecture
_PR_SET_NO_NEW_PRIVS = 38
_RULE_PATH_BENEATH = 1
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 14, 1 << 15
_FS_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


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
    signal to a process outside its sandbox (ABI >= 6). Returns 0, restricting
    nothing, when the kernel has no Landlock.
    """
    abi = landlock_abi()
    if abi < 1:
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    fs_all = _FS_RIGHTS_BY_ABI.get(abi, (1 << 16) - 1)
    file_rights = fs_all & (_FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV)
    read_rights = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
    attr = _RulesetAttr(fs_all, 0, 0)
    size = 8
    if abi >= 4:
        attr.handled_access_net, size = _NET_BIND_TCP | _NET_CONNECT_TCP, 16
    if abi >= 6:
        attr.scoped, size = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL, 24
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
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
                if libc.syscall(_SYS_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                                ctypes.byref(beneath), ctypes.c_uint32(0)) < 0:
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


SYSTEM_READ_PATHS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/opt", "/proc", "/sys", "/dev")


def _is_beneath(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


# --- the worker ---------------------------------------------------------------


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 500 else text[:497] + "..."


def _serve_child(shell, proto_in, send) -> None:
    """In the forked child: answer ``value``/``call`` requests until ``end``."""
    ns = shell.user_ns
    while True:
        line = proto_in.readline()
        if not line:
            os._exit(0)
        request = json.loads(line)
        op = request.get("op")
        if op == "end":
            os._exit(0)
        name = request.get("name")
        try:
            if name not in ns:
                send({"ok": False, "missing": True, "error": f"NameError: name {name!r} is not defined"})
                continue
            obj = ns[name]
            if op == "value":
                for key in request.get("path", []):   # e.g. clean.extra["best_epoch"]
                    obj = obj[key] if isinstance(obj, (dict, list, tuple)) else getattr(obj, key)
                send({"ok": True, "value": encode(obj)})
            elif op == "call":
                if not callable(obj):
                    send({"ok": False, "error": f"TypeError: {name!r} is not a function"})
                    continue
                args = [decode(a, allow_expr=True) for a in request.get("args", [])]
                kwargs = {k: decode(v, allow_expr=True) for k, v in request.get("kwargs", {}).items()}
                send({"ok": True, "value": encode(obj(*args, **kwargs))})
            else:
                send({"ok": False, "error": f"unknown request {op!r}"})
        except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt: all are the student's failures
            try:
                send({"ok": False, "error": _error_text(exc)})
            except BaseException:  # noqa: BLE001
                os._exit(3)


def main(config: dict) -> None:
    # 1. The protocol keeps private copies of fds 0 and 1; the student's code sees
    #    /dev/null as stdin and a log file as stdout and stderr.
    proto_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
    proto_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    log = os.open(config["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(devnull)
    os.close(log)

    def send(message: dict) -> None:
        proto_out.write(json.dumps(message) + "\n")
        proto_out.flush()

    # 2. Imports before the sandbox closes: matplotlib finds its (read-only) config and
    #    font cache now. torch is left to the notebook's first cell: a submission that
    #    does not use it starts faster, and it reads only beneath sys.path.
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401 - loads the font cache
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
    shell = Shell.instance(config=cfg)

    sandbox = "none"
    if config.get("sandbox", True):
        reads = [p for p in SYSTEM_READ_PATHS if os.path.exists(p)]
        reads += [sys.prefix, sys.base_prefix, sys.exec_prefix]
        reads += [p for p in sys.path if p and os.path.exists(p)]
        reads += list(config.get("read", []))
        hidden = list(config.get("hidden", []))
        exposed = [h for h in hidden for r in reads if _is_beneath(h, r)]
        abi = landlock_restrict(reads, [config["scratch"], os.devnull])
        if abi:
            sandbox = f"landlock (ABI {abi})" + (", but hidden paths are readable" if exposed else "")
    send({"ready": True, "sandbox": sandbox, "pid": os.getpid()})

    # 3. Serve.
    while True:
        line = proto_in.readline()
        if not line:
            os._exit(0)
        request = json.loads(line)
        op = request.get("op")
        if op == "exec":
            error = None
            try:
                result = shell.run_cell(request["code"], store_history=False)
                exc = result.error_before_exec or result.error_in_exec
                if exc is not None:
                    error = _error_text(exc)
            except BaseException as exc:  # noqa: BLE001
                error = _error_text(exc)
            sys.stdout.flush()
            send({"ok": error is None, "error": error})
        elif op == "fork":
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                try:
                    send({"child": os.getpid()})
                    _serve_child(shell, proto_in, send)
                finally:
                    os._exit(0)
            _, status = os.waitpid(pid, 0)
            # A leading newline ends any line the child left half-written when killed.
            proto_out.write("\n")
            send({"ended": status})
        elif op == "quit":
            os._exit(0)
        else:
            send({"ok": False, "error": f"unknown request {op!r}"})


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
