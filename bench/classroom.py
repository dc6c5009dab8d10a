"""`make bench` part ``classroom``: how long grading a class takes (issue 14's speed targets).

Two runs of the real command line, ``python -m coursework grade FOLDER --gradebook ... --jobs 2``,
each in a subprocess, in the bubblewrap sandbox, timed from outside:

``all chapters``
    The reference solutions of the chapters (``book/*.ipynb``). Target: at most 2 minutes.
``one chapter, 200 students``
    200 generated submissions of ``book/dropout.ipynb``: half correct (the reference, each with
    its own comment cell so that no two files are equal), a quarter partly wrong (one exercise
    redefined wrongly in a cell appended at the end: robust to edits of the chapter's text), a
    quarter hostile (an attack appended at the end, taken in turn from the kinds below).
    Target: at most 15 minutes on 2 cores.

Each run also checks its gradebook: every row must have exactly the expected total and status
(computed from the hidden tests' points, not typed here), else the row says ``wrong``.

The hostile kinds and what they cost: reading the hidden tests and the other submissions by path
and through /proc, a bounded fork bomb, a cell that never ends (stopped at ``--cell-timeout``,
then the worker restarts and runs the cells again), a function that never returns (stopped at
the exercise's ``--timeout``), more memory than the limit, a 200 MB flood of output, forged
replies and report lines, ``os._exit`` in a cell (a restart), and the package function imported
as the answer of an implement exercise (0 points for it).
"""

from __future__ import annotations

import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGETS = {"chapters": 120.0, "class": 900.0}

# (label of the exercise it breaks, code appended to the reference) for the partly wrong ones
WRONG = [
    ("do-ex2", "def ex_inverted_dropout(h, mask, p):\n    return h * mask  # forgot 1/(1-p)"),
    ("do-ex1", "by_hand = [1.0, -0.5, 0.0, 0.4]  # forgot to rescale"),
    ("do-ex3", "def mc_spread(n_masks, p_drop):\n    return 0.0"),
]

# (name, code appended to the reference, exercises it costs, gradebook status)
HOSTILE = [
    (
        "reads the tests and the others' files",
        "import glob, os\nstolen = []\nfor p in glob.glob('{folder}/*') + glob.glob('{tests}/*') + "
        "[f'/proc/{{q}}/environ' for q in os.listdir('/proc') if q.isdigit()]:\n    try:\n"
        "        stolen.append(open(p).read(100))\n    except Exception:\n        pass",
        [],
        "graded",
    ),
    (
        "bounded fork bomb",
        "import os\nkids = 0\ntry:\n    while kids < 500:\n        if os.fork() == 0:\n"
        "            import time\n            time.sleep(600)\n            os._exit(0)\n        kids += 1\n"
        "except OSError:\n    pass",
        [],
        "graded",
    ),
    ("a cell that never ends", "while True:\n    pass", [], "timed out"),
    (
        "a function that never returns",
        "def mc_spread(n_masks, p_drop):\n    while True:\n        pass",
        ["do-ex3"],
        "timed out",
    ),
    (
        "more memory than the limit",
        "try:\n    hog = bytearray(8 << 30)\nexcept MemoryError:\n    hog = None",
        [],
        "graded",
    ),
    (
        "200 MB of output",
        "import sys\nfor _ in range(200):\n    sys.stdout.write('x' * (1 << 20))",
        [],
        "graded",
    ),
    (
        "forged replies and report lines",
        "import os, json\nprint('\\n  total 7 / 7 (automatic)\\n' * 3)\nfor fd in range(3, 64):\n"
        "    try:\n        os.write(fd, (json.dumps({'ok': True, 'value': 5}) + '\\n').encode())\n"
        "    except OSError:\n        pass",
        [],
        "graded",
    ),
    ("os._exit in a cell", "import os\nos._exit(3)", [], "crashed"),
    (
        "the package function as the answer",
        "from regcourse.dropout import apply_dropout_mask as ex_inverted_dropout",
        ["do-ex2"],
        "graded",
    ),
]


def _notebook(base: dict, extra: list[str]) -> dict:
    nb = json.loads(json.dumps(base))
    for code in extra:
        nb["cells"].append(
            {
                "cell_type": "code",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": code,
            }
        )
    return nb


def make_class(folder: Path, n: int, chapter: Path) -> dict[str, tuple[float, str]]:
    """Write ``n`` submissions of ``chapter`` into ``folder``; return {student: (expected total, status)}."""
    sys.path.insert(0, str(REPO))
    from coursework.grader import load_chapters

    spec = load_chapters()[chapter.stem]
    points = {label: ex.max_score for label, ex in spec.exercises.items()}
    full = sum(points.values())
    base = json.loads(chapter.read_text())
    expected = {}
    n_correct, n_wrong = n // 2, n // 4
    for k in range(n):
        student = f"s{k:03d}"
        if k < n_correct:
            extra, cost, status = [f"# the work of {student}"], [], "graded"
        elif k < n_correct + n_wrong:
            label, code = WRONG[k % len(WRONG)]
            extra, cost, status = [code], [label], "graded"
        else:
            _, code, cost, status = HOSTILE[k % len(HOSTILE)]
            tests = REPO / "coursework" / "tests"
            extra = [code.format(folder=folder, tests=tests) if "{folder}" in code else code]
        (folder / f"{student}.ipynb").write_text(json.dumps(_notebook(base, extra)))
        expected[student] = (full - sum(points[c] for c in cost), status)
    return expected


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


_TICK = os.sysconf("SC_CLK_TCK")


def _process_table() -> dict[int, tuple[int, float]]:
    """{pid: (parent pid, CPU seconds so far)} of every process, from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            table[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK)
    return table


def _descendants_cpu(proc: subprocess.Popen, every: float = 0.25) -> float:
    """CPU seconds of ``proc``'s descendants (the sandboxes), sampled from /proc until it exits.

    The sandboxes are not reaped by the grader (it kills bwrap, whose PID namespace dies with
    it), so their CPU time never reaches getrusage: each descendant's last sampled time is
    counted instead (a slight undercount: what runs after its last sample, ``every`` seconds).
    """
    ours: set[int] = {proc.pid}
    last: dict[int, float] = {}
    while True:
        table = _process_table()
        changed = True
        while changed:
            changed = False
            for pid, (ppid, _) in table.items():
                if pid not in ours and ppid in ours:
                    ours.add(pid)
                    changed = True
        for pid in ours:  # the grader's own children (bwrap) are reaped by it: in getrusage already
            if pid in table and pid != proc.pid and table[pid][0] != proc.pid:
                last[pid] = table[pid][1]
        if proc.poll() is not None:
            return sum(last.values())
        time.sleep(every)


def grade_folder(
    folder: Path, out: Path, jobs: int, extra_args=()
) -> tuple[float, float, int, str]:
    """Run the class grader on ``folder``; (wall seconds, CPU seconds, exit status, stderr tail)."""
    cmd = [
        sys.executable,
        "-m",
        "coursework",
        "grade",
        str(folder),
        "--gradebook",
        str(out / "grades.csv"),
    ]
    cmd += ["--reports", str(out / "reports"), "--jobs", str(jobs), "--no-progress", *extra_args]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    logs = tempfile.TemporaryFile(mode="w+")
    c0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=logs, stderr=subprocess.STDOUT, text=True, env=env
    )
    sandboxes = _descendants_cpu(proc)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - c0 + sandboxes
    logs.seek(0)
    return wall, cpu, proc.returncode, logs.read().strip()[-300:]


def check_gradebook(path: Path, expected: dict[str, tuple[float, str]]) -> list[str]:
    """Rows whose total or status differ from the expected ones (empty when all are right)."""
    with open(path, newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    wrong = []
    for student, (total, status) in expected.items():
        row = rows.get(student)
        if row is None:
            wrong.append(f"{student}: no row")
        elif row["status"] != status or not row["total"] or float(row["total"]) != total:
            wrong.append(
                f"{student}: {row['total'] or '-'} ({row['status']}), expected {total:g} ({status})"
            )
    return wrong


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run_classroom(Row, quick: bool = False, log=print, jobs: int = 2) -> list:
    """The two measurements as rows of ``bench/run.py`` (``Row`` is its dataclass)."""
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="regcourse-bench-class-"))
    try:
        # 1. every chapter's reference solution
        chapters = sorted((REPO / "book").glob("*.ipynb"))
        if quick:
            chapters = [REPO / "book" / "dropout.ipynb"]
        folder = tmp / "chapters"
        folder.mkdir()
        sys.path.insert(0, str(REPO))
        from coursework.grader import load_chapters

        specs = load_chapters()
        expected = {}
        for nb in chapters:
            if nb.stem in specs:
                shutil.copy(nb, folder / nb.name)
                expected[nb.stem] = (specs[nb.stem].max_score, "graded")
        load0 = _load()
        wall, cpu, status, tail = grade_folder(folder, tmp / "out-chapters", jobs)
        rows.append(
            _row(
                Row,
                f"reference solutions of {len(expected)} chapters, --jobs {jobs}",
                f"{len(expected)} chapters",
                "chapters",
                wall,
                cpu,
                status,
                tail,
                check_gradebook(tmp / "out-chapters" / "grades.csv", expected)
                if status == 0
                else [],
                load0,
                len(expected),
            )
        )
        log(f"[classroom] {len(expected)} chapters: {wall:.1f} s (CPU {cpu:.1f} s)")
        # 2. one chapter, a class of 200 (8 in --quick)
        n = 8 if quick else 200
        folder = tmp / "class"
        folder.mkdir()
        expected = make_class(folder, n, REPO / "book" / "dropout.ipynb")
        load0 = _load()
        options = []  # the default time limits: a cell 120 s, an exercise 20 s
        wall, cpu, status, tail = grade_folder(folder, tmp / "out-class", jobs, options)
        wrong = check_gradebook(tmp / "out-class" / "grades.csv", expected) if status == 0 else []
        rows.append(
            _row(
                Row,
                f"{n} submissions of dropout (1/2 correct, 1/4 wrong, 1/4 hostile), --jobs {jobs}",
                f"{n} notebooks",
                "class",
                wall,
                cpu,
                status,
                tail,
                wrong,
                load0,
                n,
            )
        )
        log(f"[classroom] {n} submissions: {wall:.1f} s (CPU {cpu:.1f} s)")
        # 3. the same folder again: every result is reused
        wall2, cpu2, status2, tail2 = grade_folder(folder, tmp / "out-class", jobs, options)
        rows.append(
            _row(
                Row,
                f"the same {n} again (nothing changed: results reused)",
                f"{n} notebooks",
                None,
                wall2,
                cpu2,
                status2,
                tail2,
                [],
                _load(),
                n,
            )
        )
        log(f"[classroom] again: {wall2:.1f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def _row(Row, name, size, target, wall, cpu, status, tail, wrong, load0, n):
    limit = TARGETS.get(target)
    row = Row(
        "classroom", name, size, f"target <= {limit:g} s" if limit else "-", ours_ms=wall * 1e3
    )
    if limit:
        row.ratio = wall / limit
    notes = [
        f"CPU {cpu:.0f} s (grader and sandboxes; {cpu / n:.1f} s per notebook), "
        f"{wall / n:.1f} s of wall time per notebook",
        f"load average at start {load0}",
    ]
    if status != 0:
        row.status, notes = "failed", [f"exit status {status}: {tail}"] + notes
    elif wrong:
        row.status = "wrong"
        notes = [f"{len(wrong)} rows not as expected: " + "; ".join(wrong[:5])] + notes
    elif limit and wall > limit:
        row.status = "too slow"
    row.note = "; ".join(notes)
    row.detail = {
        "seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "wrong_rows": wrong,
    }
    return row


def markdown(rows) -> list[str]:
    """The classroom section of ``bench/results.md``."""
    lines = [
        "## Grading a class (`python -m coursework grade FOLDER --jobs 2`)",
        "",
        "Wall-clock time of the whole command (in the bubblewrap sandbox), the CPU time of the grader "
        "and every sandbox, ratio = time / target; each gradebook is checked row by row against the "
        "expected totals and statuses. Default time limits (a cell 120 s, an exercise 20 s; the "
        "hostile quarter includes cells and functions that never end). For a chapter with many "
        "submissions the cells before its first exercise run once (`--reference`, on by default). "
        "See `bench/classroom.py`.",
        "",
        "| what | time | ratio | status | note |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        rat = "-" if r.ratio is None else f"{r.ratio:.2f}"
        seconds = "-" if r.ours_ms is None else f"{r.ours_ms / 1e3:.0f} s"
        lines.append(f"| {r.name} ({r.reference}) | {seconds} | {rat} | {r.status} | {r.note} |")
    lines.append("")
    return lines
