"""Hostile submissions against the grader's sandbox (issue 10): each attack is contained.

One parametrized case per attack class. A case is a small notebook for a synthetic
chapter ("toy", hidden tests written below into a private folder) whose honest cells
earn 10 points, plus the attack's cells. Each case asserts the exact outcome: the
points the submission earns honestly (what the attack itself breaks in its own code
costs it; nothing it does earns more), a report, and nothing left running or changed
outside the sandbox (checked by process and file listings taken before and after).

The submissions import no torch, so a worker starts in about two seconds; the cases
are graded four at a time (also showing that workers graded together do not disturb
each other: the fork bomb runs beside the others). Two cases run a real chapter.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from coursework import __main__ as cli
from coursework import sandbox
from coursework.grader import GradingError, NoSandbox, format_report, grade, read_submission
from coursework.protocol import BadReply, LineReader, clean_text, decode_value, parse_reply

ROOT = Path(__file__).resolve().parents[1]
RUN = f"cw{os.getpid()}"  # prefix of every marker of this test run
SECRET_TESTS = f"{RUN}-HIDDEN-TESTS-SECRET"  # written into the hidden test file
SECRET_ENV = f"{RUN}-GRADER-ENV-SECRET"  # in the grader's environment
os.environ["COURSEWORK_TEST_SECRET"] = SECRET_ENV
try:
    SHADOW = Path("/etc/shadow").read_text()[:40]
except OSError:
    SHADOW = None

try:
    SANDBOX = sandbox.check()
except (
    sandbox.SandboxUnavailable
) as exc:  # e.g. macOS: the grader refuses (tested below), nothing to attack
    SANDBOX, WHY = None, str(exc)
if SANDBOX is None:
    needs_sandbox = pytest.mark.skipif(True, reason=f"no bubblewrap sandbox here: {WHY}")
else:
    needs_sandbox = pytest.mark.skipif(False, reason="")


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed here")
def test_bubblewrap_makes_a_sandbox_where_it_is_installed():
    """Where bwrap is installed, the attack table below must run, not be skipped: a setup
    that cannot make a sandbox (e.g. the interpreter hidden by the sandbox's own /tmp,
    as with a clone under /tmp before the fix) fails here."""
    assert SANDBOX is not None, WHY


TOY_TESTS = """
from coursework.spec import Chapter

SECRETS = {secrets!r}
CHAPTER = Chapter("toy", "Toy")
add = CHAPTER.exercise("toy-add", "Add two numbers", functions=["add"])
hyp = CHAPTER.exercise("toy-hypot", "The hypotenuse by hand", functions=["ex_hypot"], forbid=["hypot"])
calls = CHAPTER.exercise("toy-calls", "Four small functions", timeout=8)
late = CHAPTER.exercise("toy-after", "A value set after the attack")
secret = CHAPTER.exercise("toy-secret", "Nothing hidden reaches the student")


@add.test(points=2)
def adds(student):
    assert student.call("add", 2, 3) == 5 and student.call("add", -7, 7) == 0


@hyp.test(points=2)
def hypot(student):
    for x, y, r in [(3, 4, 5.0), (5, 12, 13.0)]:
        got = student.call("ex_hypot", x, y)
        assert isinstance(got, float) and abs(got - r) < 1e-9, f"ex_hypot({{x}}, {{y}}) = {{got!r}}"


def _call(i):
    def test(student):
        got = student.call(f"c{{i}}")
        assert type(got) is int and got == i, f"c{{i}}() = {{got!r}}"
    return test


for _i in range(1, 5):
    calls.test(points=1, name=f"c{{_i}}")(_call(_i))


@late.test(points=1)
def after(student):
    assert student.value("after") == "done"


@secret.test(points=1)
def nothing_stolen(student):
    stolen = student.value("stolen")
    assert isinstance(stolen, list) and all(isinstance(s, str) for s in stolen), repr(stolen)[:200]
    leaks = [s for s in stolen if any(k in s for k in SECRETS)]
    assert not leaks, "LEAKED: " + " | ".join(s[:100] for s in leaks)
"""

HONEST = [
    "import math, os, signal, sys, time\nstolen = []",
    "def add(a, b):\n    return a + b",
    "def ex_hypot(x, y):\n    return math.sqrt(x * x + y * y)",
    "def c1():\n    return 1\n\ndef c2():\n    return 2\n\ndef c3():\n    return 3\n\ndef c4():\n    return 4",
]
AFTER = "after = 'done'"
FULL = {"toy-add": 2, "toy-hypot": 2, "toy-calls": 4, "toy-after": 1, "toy-secret": 1}

GRAB = """
def grab(f):
    try:
        stolen.append(str(f())[:100000])
    except BaseException:
        pass
"""

# Finds, from inside the worker, the id of the request being answered and the reply pipe:
# what a student who read _worker.py could do to forge a reply the grader would accept.
REPLY = """
import json
def reply_raw(text):
    f = sys._getframe()
    while f is not None and not ("rid" in f.f_locals and hasattr(f.f_locals.get("self"), "reply_fd")):
        f = f.f_back
    rid, fd = f.f_locals["rid"], f.f_locals["self"].reply_fd
    data = text.replace("RID", rid).encode()
    while data:
        data = data[os.write(fd, data):]
"""


def _walk_for(marker: str) -> str:
    return textwrap.dedent("""
        for top, dirs, files in os.walk("/"):
            dirs[:] = [d for d in dirs if os.path.join(top, d) not in ("/proc", "/sys", "/dev", "/usr")
                       and "site-packages" not in d and not d.startswith("python3")]
            for name in files:
                grab(lambda: open(os.path.join(top, name), errors="replace").read(1 << 20))
    """)


FORK_BOMB = """
children = 0
try:
    while children < 1000:
        if os.fork() == 0:
{child}
        children += 1
except OSError:
    pass
if children >= 1000:
    raise RuntimeError("no process limit")
"""


def _fork_bomb(child: str) -> str:
    """A cell that forks until the process limit stops it (and fails if nothing does); each
    child runs ``child``."""
    return FORK_BOMB.format(child=textwrap.indent(textwrap.dedent(child).strip("\n"), " " * 12))


def _cases(ctx: dict) -> dict:
    """name -> (attack cells, expected scores differing from FULL, {cell offset: status}, options)."""
    m = ctx["marker"]
    return {
        "tests read by path": (
            [
                GRAB
                + textwrap.dedent(f"""
            import glob
            grab(lambda: open({ctx["tests_file"]!r}).read())
            grab(lambda: [open(p).read() for p in glob.glob({ctx["tests_dir"]!r} + "/*")])
            grab(lambda: open({str(ROOT / "coursework" / "tests" / "dropout.py")!r}).read())
            grab(lambda: open({str(ROOT / "coursework" / "grader.py")!r}).read())
            grab(lambda: __import__("coursework.tests.dropout"))
        """)
                + _walk_for(SECRET_TESTS)
            ],
            {},
            {0: "ok"},
            {},
        ),
        "tests and grader read through /proc": (
            [
                GRAB
                + textwrap.dedent(f"""
            for pid in [p for p in os.listdir("/proc") if p.isdigit()] + [str({ctx["grader_pid"]})]:
                for what in ("environ", "cmdline", "maps"):
                    grab(lambda: open(f"/proc/{{pid}}/{{what}}", "rb").read().decode("latin-1"))
                grab(lambda: os.readlink(f"/proc/{{pid}}/cwd"))
                grab(lambda: os.listdir(f"/proc/{{pid}}/fd"))
            def scan(pid):
                found = []
                with open(f"/proc/{{pid}}/maps") as maps, open(f"/proc/{{pid}}/mem", "rb") as mem:
                    for line in maps:
                        start, end = (int(x, 16) for x in line.split()[0].split("-"))
                        if "r" in line.split()[1] and end - start < 1 << 26:
                            try:
                                mem.seek(start)
                                found.append(mem.read(end - start).decode("latin-1"))
                            except OSError:
                                pass
                return "".join(found)
            grab(lambda: scan(1))
            grab(lambda: scan({ctx["grader_pid"]}))
        """)
            ],
            {},
            {0: "ok"},
            {},
        ),
        "/etc/shadow and home folders": (
            [
                GRAB
                + textwrap.dedent("""
            grab(lambda: open("/etc/shadow").read())
            grab(lambda: os.listdir("/root"))
            grab(lambda: [open(os.path.join("/root", p)).read() for p in os.listdir("/root")])
            grab(lambda: open(os.path.expanduser("~/.bash_history")).read())
        """)
            ],
            {},
            {0: "ok"},
            {},
        ),
        "network to loopback listeners": (
            [
                GRAB
                + textwrap.dedent(f"""
            import socket
            errors = []
            def attempt(family, kind, proto, address):
                try:
                    s = socket.socket(family, kind, proto)
                    s.settimeout(2)
                    s.connect(address)
                    s.sendall({m!r}.encode())
                    s.close()
                    errors.append("sent")
                except OSError as e:
                    errors.append(type(e).__name__)
            attempt(socket.AF_INET, socket.SOCK_STREAM, 0, ("127.0.0.1", {ctx["tcp"]}))
            attempt(socket.AF_INET, socket.SOCK_STREAM, 262, ("127.0.0.1", {ctx["mptcp"] or ctx["tcp"]}))
            attempt(socket.AF_INET, socket.SOCK_DGRAM, 0, ("127.0.0.1", {ctx["udp"]}))
            attempt(socket.AF_UNIX, socket.SOCK_STREAM, 0, {ctx["unix"]!r})
            attempt(socket.AF_UNIX, socket.SOCK_STREAM, 0, "\\0" + {ctx["abstract"]!r})
            if "sent" in errors[:2] + errors[3:]:
                raise RuntimeError(errors)   # a connected stream (UDP sends without a peer)
        """)
            ],
            {},
            {0: "ok"},
            {},
        ),
        "report lines forged in output and errors": (
            [
                textwrap.dedent("""
            print("\\n  total 10 / 10 (automatic)\\n" * 3)
            sys.stderr.write("\\x1b[2J\\x1b[H  total 10 / 10 (automatic)\\n")
            def add(a, b):
                raise ValueError("x\\n\\r  total 10 / 10 (automatic)\\x1b[1A\\x1b[2K\\u202e\\u2028  total 10 / 10 "
                                 + " " * 300 + "total 10 / 10")
        """)
            ],
            {"toy-add": 0},
            {0: "ok"},
            {},
        ),
        "forged replies on every descriptor": (
            [
                textwrap.dedent("""
            import json
            junk = [{"ok": True, "value": 5}, {"id": "0" * 32, "ok": True, "value": 5}, {"forked": True},
                    {"ended": 0}, {"ready": True}, {"id": "f" * 32, "ended": 0}]
            junk = ("\\n".join(json.dumps(j) for j in junk) + "\\n").encode()
            def spray():
                for fd in range(3, 64):
                    try:
                        os.write(fd, junk)
                    except OSError:
                        pass
            spray()
            def c1():
                spray()
                return 1
        """)
            ],
            {},
            {0: "ok"},
            {},
        ),
        "forged reply with the real id before a slow cell": (
            [
                REPLY
                + textwrap.dedent("""
            reply_raw('{"id": "RID", "ok": true, "error": null}\\n')
            time.sleep(2)
            slow_done = True
        """),
                "def c2():\n    return 2 if slow_done else -1",
            ],
            {},
            {0: "ok", 1: "ok"},
            {},
        ),
        "reply-line bombs and huge numbers": (
            [
                REPLY
                + textwrap.dedent("""
            def c1():
                reply_raw('{"id": "RID", "ok": true, "value": ' + "[" * 100000 + "]" * 100000 + "}\\n")
                return 1
            def c2():
                reply_raw('{"id": "RID", "ok": true, "value": {"__t": "tensor", "dtype": "torch.float64", '
                          '"shape": [100000, 100000], "data": []}}\\n')
                return 2
            def c3():
                reply_raw('{"id": "RID", "ok": true, "value": 1' + "0" * 30 + "}\\n")
                return 3
            def c4():
                reply_raw("x" * (20 << 20) + "\\n" + "[" * 100000 + "\\n")   # noise, then the honest reply
                return 4
        """),
                "def add(a, b):\n    return 10 ** 100000 if a == 2 else 2 ** 100",
            ],
            {"toy-calls": 1, "toy-add": 0},
            {0: "ok", 1: "ok"},
            {},
        ),
        "signals to the grader, pid 0, -1 and the parent": (
            [
                textwrap.dedent(f"""
            for pid in ({ctx["grader_pid"]}, {ctx["sleeper_pid"]}, -1, os.getppid()):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        """),
                "os.killpg(0, signal.SIGKILL)",
                "def c3():\n    os.kill(os.getppid(), signal.SIGKILL)\n    time.sleep(5)\n    return 3",
            ],
            {"toy-calls": 3},
            {0: "ok", 1: "crashed", 2: "ok"},
            {},
        ),
        "endless loops": (
            ["while True:\n    pass", "def c2():\n    while True:\n        pass"],
            {"toy-calls": 1},
            {0: "timeout", 1: "ok"},
            {},
        ),
        "bounded fork bomb": (
            [
                _fork_bomb(f"""
            try:
                os.execv("/usr/bin/sleep", [{m!r}, "600"])
            finally:
                os._exit(0)
        """)
            ],
            {},
            {0: "ok"},
            {},
        ),
        "daemonized setsid children": (
            [
                textwrap.dedent(f"""
            def daemon():
                pid = os.fork()
                if pid == 0:
                    os.setsid()
                    if os.fork() == 0:
                        os.execv("/usr/bin/sleep", [{m!r}, "600"])
                    os._exit(0)
                os.waitpid(pid, 0)
            daemon()
            def c1():
                daemon()
                return 1
        """)
            ],
            {},
            {0: "ok"},
            {},
        ),
        "more memory than the limit": (
            [
                textwrap.dedent("""
            try:
                hog = bytearray(8 << 30)
            except MemoryError:
                hog = None
            if hog is not None:
                raise RuntimeError("8 GiB allowed")
            def c1():
                x = bytearray(6 << 30)
                return 1
        """)
            ],
            {"toy-calls": 3},
            {0: "ok"},
            {},
        ),
        "a 1 GiB file and a full disk": (
            [
                textwrap.dedent(f"""
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            written, errors = 0, []
            try:
                with open("/tmp/big-{m}", "wb") as f:
                    for _ in range(1024):
                        f.write(b"\\0" * (1 << 20))
                        written += 1 << 20
            except OSError as e:
                errors.append(e.errno)
            try:
                for k in range(20):
                    with open(f"/tmp/fill-{{k}}", "wb") as f:
                        for _ in range(60):
                            f.write(b"\\0" * (1 << 20))
            except OSError as e:
                errors.append(e.errno)
            if written >= 1 << 30 or errors != [27, 28]:   # EFBIG, then ENOSPC
                raise RuntimeError(errors)
        """),
                "def c1():\n    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)\n"
                "    with open('/tmp/again', 'wb') as f:\n        f.write(b'0' * (100 << 20))\n    return 1",
            ],
            {"toy-calls": 3},
            {0: "ok", 1: "ok"},
            {},
        ),
        "output floods": (
            [
                "chunk = 'x' * (1 << 20) + '\\n'\nfor _ in range(200):\n    sys.stdout.write(chunk)",
                "def c1():\n    for _ in range(50):\n        print('y' * (1 << 20))\n    return 1",
            ],
            {},
            {0: "ok", 1: "ok"},
            {},
        ),
        "os._exit and closed stdout": (
            [
                "os._exit(3)",
                "os.close(1)\nos.close(2)\nprint('gone', flush=True)",
                "def c2():\n    os._exit(0)\n\ndef c3():\n    for fd in range(1, 3):\n"
                "        try:\n            os.close(fd)\n        except OSError:\n"
                "            pass\n    return 3",
            ],
            {"toy-calls": 3},
            {0: "crashed", 1: "error", 2: "ok"},
            {},
        ),
        "patched builtins, json, numpy and package files": (
            [
                textwrap.dedent(f"""
            import builtins, site, numpy
            targets = [os.path.join(p, "zz_evil.pth") for p in site.getsitepackages()]
            targets += [numpy.__file__, {ctx["regcourse_init"]!r}, {ctx["tests_file"]!r}, {ctx["canary"]!r}]
            for t in targets:
                try:
                    with open(t, "a") as f:
                        f.write("import os; os.system('touch /tmp/{m}-pwned')\\n")
                except OSError:
                    pass
            numpy.allclose = lambda *a, **k: True
            math.isclose = lambda *a, **k: True
            builtins.abs = lambda x: 0
        """),
                'import json\njson.dumps = lambda *a, **k: \'{"ok": true, "value": 999}\'',
            ],
            {},
            {0: "ok", 1: "timeout"},
            {},
        ),
        "always-equal objects": (
            [
                textwrap.dedent("""
            class Eq:
                def __eq__(self, other):
                    return True
            class I(int):
                def __eq__(self, other):
                    return True
                __hash__ = int.__hash__
            class G(float):
                def __eq__(self, other):
                    return True
                def __sub__(self, other):
                    return G(0.0)
                def __abs__(self):
                    return G(0.0)
                def __lt__(self, other):
                    return True
            def add(a, b):
                return Eq()
            def c1():
                return I(0)
            def ex_hypot(x, y):
                return G(0.0)
        """)
            ],
            {"toy-add": 0, "toy-calls": 3, "toy-hypot": 0},
            {0: "ok"},
            {},
        ),
        "symlink and FIFO log tricks before a crash": (
            [
                textwrap.dedent(f"""
            for name in ("output.log", "log", "/tmp/output.log", "/tmp/coursework.log"):
                try:
                    os.symlink({ctx["canary"]!r}, name)
                except OSError:
                    pass
            for name in ("fifo.log", "/tmp/output.fifo"):
                try:
                    os.mkfifo(name)
                except OSError:
                    pass
            os._exit(1)
        """),
                "print('after the crash')",
            ],
            {},
            {0: "crashed", 1: "ok"},
            {},
        ),
        "the notebook's time limit": (
            ["time.sleep(1.5)"] * 8,
            {k: 0 for k in FULL},
            {},
            {"notebook_timeout": 8},
        ),
        # the ban on calling the library function: every way of binding the name
        "forbid: import alias": (
            ["from math import hypot as ex_hypot"],
            {"toy-hypot": 0},
            {0: "ok"},
            {},
        ),
        "forbid: assignment": (["ex_hypot = math.hypot"], {"toy-hypot": 0}, {0: "ok"}, {}),
        "forbid: exec of a literal": (
            ["exec('ex_hypot = math.hypot')"],
            {"toy-hypot": 0},
            {0: "ok"},
            {},
        ),
        "forbid: globals() with computed names": (
            ['globals()["ex_" + "hypot"] = getattr(math, "hy" + "pot")'],
            {"toy-hypot": 0},
            {0: "ok"},
            {},
        ),
        "forbid: through a helper name": (
            ["_h = math.hypot\ndef ex_hypot(x, y):\n    return _h(x, y)"],
            {"toy-hypot": 0},
            {0: "ok"},
            {},
        ),
        "forbid: lambda": (
            ["ex_hypot = lambda x, y: math.hypot(x, y)"],
            {"toy-hypot": 0},
            {0: "ok"},
            {},
        ),
    }


REAL_CASES = {
    # the example: the exercise "implemented" as the package function
    "real chapter: the package function imported as the answer": (
        "from regcourse.dropout import apply_dropout_mask as ex_inverted_dropout",
        {"do-ex2": 0},
    ),
    # patching torch and the package in the student's process changes nothing in the grader
    "real chapter: patched torch and package, wrong answer": (
        textwrap.dedent("""
        import torch, regcourse.dropout
        torch.allclose = lambda *a, **k: True
        torch.equal = lambda *a, **k: True
        regcourse.dropout.apply_dropout_mask = lambda h, mask, p: h
        def ex_inverted_dropout(h, mask, p):
            return h
    """),
        {"do-ex2": 0},
    ),
}


# --- listings before and after -----------------------------------------------------------


def _processes() -> dict[int, str]:
    out = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                out[int(pid)] = (
                    Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("latin-1")
                )
            except OSError:
                pass
    return out


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    return kids


def _tree(folder: Path, recursive: bool = True) -> dict[str, tuple]:
    found = {}
    paths = folder.rglob("*") if recursive else folder.iterdir()
    for p in paths:
        try:
            info = p.lstat()
        except OSError:
            continue
        found[str(p)] = (info.st_size, info.st_mtime_ns)
    return found


def _snapshot(ctx: dict) -> dict:
    """What an escaped attack would change. Robust to other work in a shared tree: the package
    files are searched for this run's marker rather than compared by time (the grader itself
    writes bytecode caches, and other people may be editing the package)."""
    import site

    import numpy
    import regcourse

    def digest(p):
        return hashlib.sha256(Path(p).read_bytes()).hexdigest()

    package = [
        p
        for p in Path(regcourse.__file__).parent.rglob("*.py")
        if RUN in p.read_text(errors="replace")
    ]
    return {
        "site-packages .pth files": {
            str(p): digest(p) for sp in site.getsitepackages() for p in Path(sp).glob("*.pth")
        },
        "package files with the marker": package,
        "numpy": digest(numpy.__file__),
        "hidden tests": {p: digest(p) for p in _tree(Path(ctx["tests_dir"]))},
        "repo tests": {
            p: digest(p) for p in _tree(ROOT / "coursework" / "tests") if p.endswith(".py")
        },
        "canary": Path(ctx["canary"]).read_text(),
        "staging": sorted(
            p
            for p in os.listdir(os.path.realpath("/tmp"))
            if p.startswith(f"coursework-{os.getpid()}-")
        ),
        "host /tmp markers": sorted(p for p in os.listdir("/tmp") if RUN in p),
    }


# --- the listeners the network case tries to reach -------------------------------------------


class Listeners:
    def __init__(self, folder: Path, marker: str):
        self.received: list[str] = []
        self.sockets = []
        self.tcp = self._stream(socket.AF_INET, 0, ("127.0.0.1", 0))
        try:
            self.mptcp = self._stream(socket.AF_INET, 262, ("127.0.0.1", 0))
        except OSError:  # a kernel without MPTCP: the attack then tries plain TCP twice
            self.mptcp = None
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(0.2)
        self.sockets.append(udp)
        self.udp = udp.getsockname()[1]
        os.chmod(folder, 0o777)
        self.unix = str(folder / "listener.sock")
        self._stream(socket.AF_UNIX, 0, self.unix)
        os.chmod(self.unix, 0o777)
        self.abstract = f"{marker}-abstract"
        self._stream(socket.AF_UNIX, 0, "\0" + self.abstract)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _stream(self, family, proto, address):
        s = socket.socket(family, socket.SOCK_STREAM, proto)
        s.bind(address)
        s.listen(8)
        s.settimeout(0.2)
        self.sockets.append(s)
        return s.getsockname()[1] if family == socket.AF_INET else address

    def _serve(self):
        while not self.stop.is_set():
            for s in self.sockets:
                try:
                    if s.type == socket.SOCK_DGRAM:
                        self.received.append(s.recv(4096).decode("latin-1"))
                    else:
                        conn, _ = s.accept()
                        conn.settimeout(1)
                        self.received.append("connection: " + conn.recv(4096).decode("latin-1"))
                        conn.close()
                except (TimeoutError, BlockingIOError):
                    pass
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.thread.join(5)
        for s in self.sockets:
            s.close()


# --- grading the table ------------------------------------------------------------------------


def _toy_tests_dir(tmp_path: Path) -> Path:
    """A hidden-tests folder holding the toy chapter's tests."""
    tests_dir = tmp_path / "hidden"
    tests_dir.mkdir()
    (tests_dir / "toy.py").write_text(TOY_TESTS.format(secrets=[SECRET_TESTS]))
    return tests_dir


def _notebook(path: Path, cells: list[str]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["coursework"] = {"chapter": "toy"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


def _real_notebook(path: Path, extra: str) -> Path:
    nb = nbformat.read(ROOT / "book" / "dropout.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(extra))
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """Grade every case (four at a time) with listings taken before and after."""
    if SANDBOX is None:
        pytest.skip(f"no bubblewrap sandbox here: {WHY}")
    base = tmp_path_factory.mktemp("attacks")
    tests_dir = base / "hidden"
    tests_dir.mkdir()
    secrets = [SECRET_TESTS, SECRET_ENV] + ([SHADOW] if SHADOW else [])
    (tests_dir / "toy.py").write_text(f"# {SECRET_TESTS}\n" + TOY_TESTS.format(secrets=secrets))
    canary = base / "canary.txt"
    canary.write_text("canary\n")
    os.chmod(canary, 0o666)
    net = base / "net"
    net.mkdir()
    listeners = Listeners(net, RUN)
    sleeper = subprocess.Popen(["sleep", "600"])
    import regcourse

    ctx = {
        "tests_dir": str(tests_dir),
        "tests_file": str(tests_dir / "toy.py"),
        "canary": str(canary),
        "grader_pid": os.getpid(),
        "sleeper_pid": sleeper.pid,
        "tcp": listeners.tcp,
        "mptcp": listeners.mptcp,
        "udp": listeners.udp,
        "unix": listeners.unix,
        "abstract": listeners.abstract,
        "regcourse_init": regcourse.__file__,
    }
    jobs = {}
    for i, (name, (cells, _, _, opts)) in enumerate(
        _cases({**ctx, "marker": f"{RUN}x{0}"}).items()
    ):
        marker = f"{RUN}x{i}"
        case_cells = _cases({**ctx, "marker": marker})[name][0]
        path = _notebook(base / f"case{i}.ipynb", HONEST + case_cells + [AFTER])
        kwargs = {
            "tests_dir": tests_dir,
            "timeout": 8,
            "cell_timeout": 5,
            "notebook_timeout": 120,
            **opts,
        }
        jobs[name] = (path, kwargs, marker)
    for i, (name, (extra, _)) in enumerate(REAL_CASES.items()):
        jobs[name] = (_real_notebook(base / f"real{i}.ipynb", extra), {"timeout": 30}, f"{RUN}r{i}")
    before = _snapshot(ctx)

    def run(name):
        path, kwargs, _ = jobs[name]
        started = time.monotonic()
        try:
            return grade(path, **kwargs), time.monotonic() - started
        except BaseException as exc:
            return exc, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=4) as pool:
        order = sorted(jobs, key=lambda n: not n.startswith("real"))  # the slow ones first
        results = dict(zip(order, pool.map(run, order)))
    time.sleep(0.5)  # let killed sandboxes finish dying before listing processes
    after = _snapshot(ctx)
    survivors = {pid: cmd for pid, cmd in _processes().items() if RUN in cmd}
    children = [pid for pid in _children(os.getpid()) if pid != sleeper.pid]
    sleeper_alive = sleeper.poll() is None
    sleeper.kill()
    sleeper.wait()
    listeners.close()
    yield {
        "results": results,
        "jobs": jobs,
        "before": before,
        "after": after,
        "survivors": survivors,
        "children": children,
        "sleeper_alive": sleeper_alive,
        "received": listeners.received,
        "ctx": ctx,
    }


def _check_common(table, name):
    report, seconds = table["results"][name]
    if isinstance(report, BaseException):
        raise report
    marker = table["jobs"][name][2]
    assert table["after"] == table["before"], "something outside the sandbox changed"
    assert not [c for c in table["survivors"].values() if marker in c], table["survivors"]
    assert table["children"] == [], "grader processes left running"
    assert table["sleeper_alive"], "a process outside the sandbox was killed"
    assert table["received"] == [], f"a loopback listener was reached: {table['received']}"
    assert report["sandbox"].startswith("bubblewrap"), report["sandbox"]
    text = format_report(report)
    lines = text.splitlines()
    assert all(line.isascii() and line.isprintable() for line in lines), (
        "control characters in the report"
    )
    assert [ln for ln in lines if ln.lstrip().startswith("total")] == [lines[-1]]
    assert lines[-1] == f"  total {report['score']:g} / {report['max_score']:g} (automatic)"
    json.dumps(report)
    return report


@needs_sandbox
@pytest.mark.parametrize(
    "name",
    list(
        _cases(
            {
                k: "x"
                for k in (
                    "marker",
                    "tests_dir",
                    "tests_file",
                    "canary",
                    "grader_pid",
                    "sleeper_pid",
                    "tcp",
                    "mptcp",
                    "udp",
                    "unix",
                    "abstract",
                    "regcourse_init",
                )
            }
        )
    ),
)
def test_attack_is_contained(table, name):
    report = _check_common(table, name)
    _, expected, statuses, _ = _cases({**table["ctx"], "marker": table["jobs"][name][2]})[name]
    scores = {e["label"]: e["score"] for e in report["exercises"]}
    assert scores == {**FULL, **expected}, json.dumps(report["exercises"], indent=1)[:4000]
    attack_cells = [c for c in report["cells"]][len(HONEST) : len(HONEST) + len(statuses)]
    assert {k: attack_cells[k]["status"] for k in statuses} == statuses, report["cells"]
    if name.startswith("forbid"):
        note = next(e["note"] for e in report["exercises"] if e["label"] == "toy-hypot")
        assert note and "`hypot`" in note and "0 points" in note, note
    if name == "report lines forged in output and errors":
        message = report["exercises"][0]["tests"][0]["message"]
        assert "\n" not in message and "\x1b" not in message and "\u202e" not in message
        assert "total 10 / 10" in format_report(report)  # shown, but only as fenced student text
    if name == "reply-line bombs and huge numbers":
        calls = next(e for e in report["exercises"] if e["label"] == "toy-calls")["tests"]
        assert all("could not be read" in t["message"] for t in calls[:3]), calls
    if name == "the notebook's time limit":
        assert table["results"][name][1] < 8 + 60, "the notebook limit did not stop grading"
        assert all(
            "notebook's time limit" in t["message"] for e in report["exercises"] for t in e["tests"]
        )
        assert any(c["status"] == "not run" for c in report["cells"])


@needs_sandbox
@pytest.mark.parametrize("name", list(REAL_CASES))
def test_attack_on_a_real_chapter_is_contained(table, name):
    report = _check_common(table, name)
    _, expected = REAL_CASES[name]
    for ex in report["exercises"]:
        assert ex["score"] == expected.get(ex["label"], ex["max_score"]), (name, ex)
    if "imported" in name:
        note = next(e["note"] for e in report["exercises"] if e["label"] == "do-ex2")
        assert "apply_dropout_mask" in note and "0 points" in note, note


# Children that are copies of a big process (a fork bomb without exec, after 1 GiB of the
# notebook's own memory): killed by the sweep before each test, they take a second or more to
# be gone, and count against the process limit until then. Issue 14's bench: 5 of its 6 such
# submissions of the dropout chapter scored 0 (every test "could not start": EAGAIN), because
# the sweep forked the test right after sending SIGKILL.
BIG_FORK_BOMB = textwrap.dedent("""
    ballast = bytearray(1 << 30)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
""") + _fork_bomb("time.sleep(600)\nos._exit(0)")


@needs_sandbox
def test_a_fork_bomb_of_big_copies_costs_no_points_nor_anyone_elses(tmp_path):
    """Graded at the same time as an honest submission: both get full marks."""
    tests_dir = _toy_tests_dir(tmp_path)
    bomb = _notebook(tmp_path / "bomb.ipynb", HONEST + [BIG_FORK_BOMB, AFTER])
    honest = _notebook(tmp_path / "honest.ipynb", HONEST + [AFTER])
    kwargs = {"tests_dir": tests_dir, "timeout": 8, "cell_timeout": 60}
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(lambda p: grade(p, **kwargs), [bomb, honest]))
    for report in reports:
        failed = [t["message"] for e in report["exercises"] for t in e["tests"] if not t["passed"]]
        assert {e["label"]: e["score"] for e in report["exercises"]} == FULL, failed
    assert [c["status"] for c in reports[0]["cells"]] == ["ok"] * (len(HONEST) + 2)


@needs_sandbox
def test_threads_that_use_up_the_process_limit_are_named_in_the_feedback(tmp_path):
    """Threads of the notebook's own process cannot be killed before a test: a submission that
    keeps the whole budget in threads fails the tests, and the message says why."""
    tests_dir = _toy_tests_dir(tmp_path)
    threads = textwrap.dedent("""
        import threading
        started = 0
        try:
            while started < 1000:
                threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
                started += 1
        except RuntimeError:
            pass
    """)
    path = _notebook(tmp_path / "threads.ipynb", HONEST + [threads, AFTER])
    report = grade(path, tests_dir=tests_dir, timeout=8, cell_timeout=30)
    assert report["score"] == 0, report["exercises"]
    message = report["exercises"][0]["tests"][0]["message"]
    limit = sandbox.Limits().processes
    assert f"limit of {limit} processes and threads is used up" in message, message
    assert "threads in the notebook's own process" in message, message


@needs_sandbox
def test_a_sneaky_getattr_is_flagged_for_review_not_silently_passed(tmp_path):
    """What the ban cannot prove from the source is reported for a human, never passed silently."""
    tests_dir = _toy_tests_dir(tmp_path)
    path = _notebook(
        tmp_path / "sub.ipynb",
        HONEST + ["def ex_hypot(x, y):\n    return getattr(math, 'hy' + 'pot')(x, y)", AFTER],
    )
    report = grade(path, tests_dir=tests_dir, timeout=4, cell_timeout=5)
    hyp = next(e for e in report["exercises"] if e["label"] == "toy-hypot")
    assert (
        hyp["score"] == 2 and hyp["review"] is True and "check this exercise by hand" in hyp["note"]
    ), hyp


# --- malformed and hostile notebook files ------------------------------------------------------------


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    files = {}

    def write(name, data):
        p = tmp_path / f"{name}.ipynb"
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        files[name] = p

    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}
    write("not JSON", "{ this is not json")
    write("empty file", "")
    write("binary", bytes(range(256)) * 10)
    write("JSON list", "[1, 2, 3]")
    write("nested JSON", "[" * 100000 + "]" * 100000)
    write("cells not a list", json.dumps({**nb, "cells": {"a": 1}}))
    write("a cell is a string", json.dumps({**nb, "cells": ["print(1)"]}))
    write(
        "source is a number",
        json.dumps({**nb, "cells": [{"cell_type": "code", "source": 42, "metadata": {}}]}),
    )
    write(
        "source list holds a number",
        json.dumps({**nb, "cells": [{"cell_type": "code", "source": ["x", 1]}]}),
    )
    write("cell_type missing", json.dumps({**nb, "cells": [{"source": "x = 1"}]}))
    write("metadata is a list", json.dumps({**nb, "metadata": ["coursework"]}))
    write(
        "cell metadata is a string",
        json.dumps({**nb, "cells": [{"cell_type": "code", "source": "", "metadata": "x"}]}),
    )
    huge = tmp_path / "huge.ipynb"
    with open(huge, "wb") as f:
        f.truncate(65 << 20)
    files["huge file"] = huge
    fifo = tmp_path / "fifo.ipynb"
    os.mkfifo(fifo)
    files["a FIFO"] = fifo
    folder = tmp_path / "folder.ipynb"
    folder.mkdir()
    files["a folder"] = folder
    secret_target = tmp_path / f"{RUN}-symlink-target-secret.ipynb"
    secret_target.write_text(json.dumps(nb))
    link = tmp_path / "link.ipynb"
    link.symlink_to(secret_target)
    files["a symlink"] = link
    return files


def test_malformed_notebooks_exit_2_with_one_line(tmp_path, capsys):
    tests_dir = _toy_tests_dir(tmp_path)
    for name, path in _bad_files(tmp_path).items():
        status = cli.main(["grade", str(path), "--tests-dir", str(tests_dir), "--chapter", "toy"])
        out, err = capsys.readouterr()
        assert status == 2, (name, out, err)
        assert out == "" and err.startswith("error: ") and err.count("\n") == 1, (name, err)
        assert "Traceback" not in err and "symlink-target" not in err, (name, err)
        with pytest.raises(GradingError):
            read_submission(path)


def test_chapter_metadata_of_the_wrong_type_is_ignored(tmp_path):
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"coursework": ["toy"]},
        "cells": [{"cell_type": "code", "source": "x = 1", "metadata": {}, "outputs": []}],
    }
    path = tmp_path / "whatever.ipynb"
    path.write_text(json.dumps(nb))
    tests_dir = _toy_tests_dir(tmp_path)
    with pytest.raises(GradingError, match="cannot tell which chapter"):
        grade(path, tests_dir=tests_dir)


# --- where no sandbox can be made ----------------------------------------------------------------------


def test_no_bubblewrap_refuses_untrusted_code_unless_asked(tmp_path, monkeypatch, capsys):
    tests_dir = _toy_tests_dir(tmp_path)
    path = _notebook(tmp_path / "sub.ipynb", HONEST + [AFTER])
    import tempfile

    holder = tempfile.TemporaryDirectory(
        prefix=f"{RUN}-bin-"
    )  # readable by the sandbox user, unlike tmp_path
    empty = Path(holder.name)
    empty.chmod(0o755)
    monkeypatch.setenv("PATH", str(empty))
    status = cli.main(["grade", str(path), "--tests-dir", str(tests_dir)])
    out, err = capsys.readouterr()
    assert status == 2 and out == "" and err.count("\n") == 1
    assert "no sandbox" in err and "bubblewrap" in err and "--no-sandbox" in err, err
    with pytest.raises(NoSandbox):
        grade(path, tests_dir=tests_dir)
    # a bwrap that cannot create namespaces (as on a kernel without user namespaces)
    fake = empty / "bwrap"
    fake.write_text(
        "#!/bin/sh\n[ \"$1\" = --version ] && echo 'bubblewrap 0.8.0' && exit 0\n"
        "echo 'bwrap: No permissions to creating new namespace, likely because the kernel does not "
        "allow non-privileged user namespaces.' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    for tool in ("unshare", "setpriv", "mount", "sh"):
        real = subprocess.run(
            ["/bin/sh", "-c", f"command -v {tool}"],
            capture_output=True,
            text=True,
            env={"PATH": os.defpath},
        ).stdout.strip()
        if real:
            (empty / tool).symlink_to(real)
    status = cli.main(["grade", str(path), "--tests-dir", str(tests_dir)])
    out, err = capsys.readouterr()
    assert status == 2 and err.count("\n") == 1 and "user namespaces" in err, err
    # --no-sandbox is the explicit way out, and the report says so
    status = cli.main(
        ["grade", str(path), "--tests-dir", str(tests_dir), "--no-sandbox", "--timeout", "5"]
    )
    out, err = capsys.readouterr()
    holder.cleanup()
    assert (
        status == 0
        and "sandbox: none (--no-sandbox)" in out
        and out.splitlines()[-1] == "  total 10 / 10 (automatic)"
    )


# --- the channel's parser, piece by piece ------------------------------------------------------------


class TestStrictReplies:
    @pytest.mark.parametrize(
        "data, match",
        [
            (
                {"__t": "tensor", "dtype": "torch.float64", "shape": [100000, 100000], "data": []},
                "shape",
            ),
            ({"__t": "tensor", "dtype": "torch.complex128", "shape": [1], "data": [1]}, "dtype"),
            ({"__t": "ndarray", "dtype": "(100000,100000)f8", "shape": [], "data": [1]}, "dtype"),
            ({"__t": "tensor", "dtype": "torch.int8", "shape": [1], "data": [300]}, "int8"),
            ({"__t": "tensor", "dtype": "torch.float32", "shape": [-1], "data": []}, "shape"),
            ({"__t": "bigint", "value": "9" * 5000}, "big integer"),
            ({"__t": "expr", "code": "__import__('os').system('true')"}, "unknown form"),
            ({"__t": "dict", "items": [[1]]}, "pair"),
            (2**70, "out of range"),
            (json.loads("[" * 40 + "1" + "]" * 40), "nested"),
            (list(range(300_000)), "elements"),
        ],
    )
    def test_malformed_values_are_refused(self, data, match):
        with pytest.raises(BadReply, match=match):
            decode_value(data)

    def test_well_formed_values_round_trip(self):
        import torch

        from coursework._worker import encode

        value = {
            "t": torch.tensor([[1.5, float("nan")]], dtype=torch.float64),
            "big": 2**70,
            (1, 2.0): [None, ...],
        }
        back = decode_value(json.loads(json.dumps(encode(value))))
        assert back["big"] == 2**70 and back[(1, 2.0)] == [None, ...]
        assert (
            back["t"].dtype == torch.float64
            and torch.isnan(back["t"][0, 1])
            and back["t"][0, 0] == 1.5
        )

    @pytest.mark.parametrize(
        "line", [b"[" * 100000, b'{"a": 1' + b"0" * 40 + b"}", b"\xff\xfe", b"[1, 2]"]
    )
    def test_unparseable_lines_are_bad_replies(self, line):
        with pytest.raises(BadReply):
            parse_reply(line)

    def test_line_reader_drops_overlong_lines_without_keeping_them(self):
        reader = LineReader(max_line=10)
        assert reader.feed(b"short\n" + b"x" * 25) == [b"short"]
        assert (
            len(reader._buffer) == 0
            and reader.feed(b"yyy\nok\n") == [b"ok"]
            and reader.dropped == 1
        )

    @pytest.mark.parametrize(
        "text", ["a\nb", "\x1b[2J", "\u202e", "\u2028", "a\rb", "\x00", "\ufeff"]
    )
    def test_clean_text_leaves_no_control_characters(self, text):
        cleaned = clean_text(text, ascii_only=True)
        assert cleaned.isprintable() and cleaned.isascii() and "\n" not in cleaned
