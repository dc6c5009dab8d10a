"""The package as a learner installs it: build the wheel, install it into a fresh virtual
environment, and use it from there.

The environment is made with ``python -m venv`` (the interpreter's bundled pip, no
``--system-site-packages``). To stay fast and offline, its third-party dependencies
(torch, numpy, ...) are the shared environment's, seen through a ``.pth`` file that
points at a folder of links to them, *without* the repository's own ``regcourse``
(neither its files nor its editable-install hook): the ``regcourse`` imported in the
new environment must be the wheel's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import site
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import regcourse

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, cwd, timeout=300, env=None):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{cmd} failed:\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """Wheel and sdist built from a copy of the sources, so that parallel test workers
    (and the people sharing the work tree) never see each other's build/ folders."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE", "LICENSE-content", "CHANGELOG.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "regcourse", src / "regcourse", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)], cwd=out)
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(out.iterdir())
    return wheels[0], sdists[0]


@pytest.fixture(scope="module")
def venv(tmp_path_factory, dist):
    base = tmp_path_factory.mktemp("venv")
    env_dir = base / "env"
    _run([sys.executable, "-m", "venv", str(env_dir)], cwd=base)
    python = env_dir / "bin" / "python"
    # third-party dependencies: links to the shared site-packages' entries, minus regcourse
    deps = base / "deps"
    deps.mkdir()
    shared = Path(site.getsitepackages()[0])
    for entry in shared.iterdir():
        name = entry.name.lower()
        if name.startswith(
            ("regcourse", "__editable__", "_virtualenv", "pip", "setuptools", "_distutils")
        ):
            continue
        if entry.suffix == ".pth":
            continue
        (deps / entry.name).symlink_to(entry)
    purelib = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=base
    )
    Path(purelib.stdout.strip(), "shared_deps.pth").write_text(f"{deps}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PIP_NO_INDEX"] = "1"  # offline
    # --no-deps: the dependencies are the linked ones (pip would otherwise also want to
    # upgrade the venv's bundled setuptools for torch); test_dependencies_satisfied
    # checks our requirements against them instead
    _run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(dist[0])],
        cwd=base,
        env=env,
    )
    return python, env_dir, env


class TestWheel:
    def test_contents(self, dist):
        names = zipfile.ZipFile(dist[0]).namelist()
        assert "regcourse/py.typed" in names
        assert "regcourse/calibration.py" in names and "regcourse/experiments/__init__.py" in names
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
        assert not any(n.startswith(("tests/", "book/", "coursework/")) for n in names)

    def test_metadata(self, dist):
        with zipfile.ZipFile(dist[0]) as z:
            meta = next(
                z.read(n).decode() for n in z.namelist() if n.endswith(".dist-info/METADATA")
            )
        assert f"Version: {regcourse.__version__}" in meta
        assert "License-Expression: MIT" in meta
        for extra in ("test", "book", "lab"):
            assert f"Provides-Extra: {extra}" in meta
        assert "Requires-Dist: mnist1d" in meta and "Requires-Dist: torch" in meta

    def test_sdist_has_the_licenses(self, dist):
        import tarfile

        names = [Path(n).name for n in tarfile.open(dist[1]).getnames()]
        assert "LICENSE" in names and "pyproject.toml" in names and "py.typed" in names

    def test_build_requirement_matches_the_metadata(self):
        """license = "MIT" (a PEP 639 expression) needs setuptools >= 77."""
        config = tomllib.loads((ROOT / "pyproject.toml").read_text())
        assert config["project"]["license"] == "MIT"
        assert "setuptools>=77" in config["build-system"]["requires"]

    def test_version_has_one_source(self):
        config = tomllib.loads((ROOT / "pyproject.toml").read_text())
        assert "version" not in config["project"] and "version" in config["project"]["dynamic"]
        assert config["tool"]["setuptools"]["dynamic"]["version"] == {
            "attr": "regcourse.__version__"
        }


class TestInstalledWheel:
    def test_imports_the_wheel_not_the_repository(self, venv, tmp_path):
        python, env_dir, env = venv
        code = (
            "import json, importlib.metadata as md, regcourse;"
            "print(json.dumps({'file': regcourse.__file__, 'version': regcourse.__version__,"
            "'dist': md.version('regcourse')}))"
        )
        out = json.loads(_run([str(python), "-c", code], cwd=tmp_path, env=env).stdout)
        assert Path(out["file"]).resolve().is_relative_to(env_dir.resolve())
        assert out["version"] == out["dist"] == regcourse.__version__

    def test_dependencies_satisfied(self, venv, tmp_path):
        """Every Requires-Dist of the installed wheel (no extras) is met in the new environment."""
        python, _, env = venv
        code = (
            "import importlib.metadata as md, json\n"
            "from pip._vendor.packaging.requirements import Requirement\n"
            "bad = []\n"
            "for text in md.requires('regcourse'):\n"
            "    req = Requirement(text)\n"
            "    if req.marker is not None and not req.marker.evaluate({'extra': ''}):\n"
            "        continue\n"
            "    try:\n"
            "        have = md.version(req.name)\n"
            "    except md.PackageNotFoundError:\n"
            "        bad.append(f'{req} missing'); continue\n"
            "    if not req.specifier.contains(have, prereleases=True):\n"
            "        bad.append(f'{req}: have {have}')\n"
            "print(json.dumps(bad))\n"
        )
        bad = json.loads(_run([str(python), "-c", code], cwd=tmp_path, env=env).stdout)
        assert bad == []

    def test_a_chapter_runs_against_it(self, venv, tmp_path):
        """What a chapter's first cells do: setup(), data, a model, a short training run."""
        python, _, env = venv
        code = f"""
import regcourse, torch
regcourse.setup({regcourse.__version__!r})
from regcourse.data import mnist1d_split
from regcourse.models import mnist1d_model
from regcourse.training import train, evaluate
data = mnist1d_split(500)
model = mnist1d_model("mlp", seed=0)
h = train(model, data, epochs=2, batch_size=100, lr=1e-2, optimizer="adam")
print("trained", len(h.val_acc), 0.0 <= evaluate(model, data.x_test, data.y_test)[1] <= 1.0)
"""
        out = _run([str(python), "-c", code], cwd=tmp_path, env=env).stdout
        assert f"regcourse {regcourse.__version__} ready" in out
        assert "trained 2 True" in out

    def test_command_line(self, venv, tmp_path):
        python, env_dir, env = venv
        out = _run([str(env_dir / "bin" / "regcourse"), "--help"], cwd=tmp_path, env=env).stdout
        assert "usage" in out.lower()

    def test_wrong_version_names_the_wheel(self, venv, tmp_path):
        python, _, env = venv
        proc = subprocess.run(
            [str(python), "-c", "import regcourse; regcourse.setup('0.0.1')"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert proc.returncode != 0
        assert "pip install regcourse-0.0.1-py3-none-any.whl" in proc.stderr


class TestDownloadedChapter:
    """A learner downloads one chapter and runs it with the installed wheel (issue 11)."""

    CHAPTER = ROOT / "book" / "dropout.ipynb"

    def test_runs_under_nbval_against_its_committed_outputs(self, venv, tmp_path):
        python, env_dir, env = venv
        work = tmp_path / "downloads"  # an empty folder: no repository, no conftest
        work.mkdir()
        shutil.copy(self.CHAPTER, work / self.CHAPTER.name)
        env = dict(env, PYTHONHASHSEED="0", REGCOURSE_NUM_THREADS="1")
        proc = subprocess.run(
            [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
             "--nbval-current-env", self.CHAPTER.name],
            cwd=work, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        assert re.search(r"\d+ passed", proc.stdout) and "failed" not in proc.stdout

    def test_the_kernel_imports_the_wheel(self, venv, tmp_path):
        """The kernel nbval starts there is the new environment's, with the wheel's regcourse."""
        python, env_dir, env = venv
        code = (
            "from jupyter_client.manager import start_new_kernel\n"
            "km, kc = start_new_kernel(kernel_name='python3')\n"
            "msg = kc.execute_interactive('import regcourse, sys; print(regcourse.__file__)',"
            " output_hook=lambda m: print(m['content'].get('text', ''), end=''))\n"
            "km.shutdown_kernel(now=True)\n"
        )
        out = _run([str(python), "-c", code], cwd=tmp_path, env=env).stdout.strip()
        assert Path(out).resolve().is_relative_to(env_dir.resolve()), out
