"""Shared test settings: one torch thread (fast and deterministic on the 2-core CI machine),
every matplotlib figure closed after each test (experiments draw one per run), and the
package's disk cache (``REGCOURSE_CACHE_DIR``) in a temporary folder of the session, so the
tests never write to the real ``~/.cache`` (subprocesses started with the tests' environment
inherit it)."""

import matplotlib.pyplot as plt
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REGCOURSE_CACHE_DIR", str(tmp_path_factory.mktemp("regcourse-cache")))
        yield


def pytest_collection_modifyitems(items):
    """Under xdist's ``--dist loadgroup`` (``make test-browsers`` runs two browsers), keep
    every test of one page on one worker: the browser tests share one visit per page and
    mode (``test_site.look``), the PDF's tests one reading of the PDF, and the JupyterLab
    tests one server."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if item.get_closest_marker("lab") is not None:
            item.add_marker(pytest.mark.xdist_group(name="lab"))  # one JupyterLab server
            continue
        if item.get_closest_marker("site") is None:
            continue
        if "page" in params:
            item.add_marker(pytest.mark.xdist_group(name=f"page:{params['page']}"))
        elif item.module.__name__ == "test_pdf":
            item.add_marker(pytest.mark.xdist_group(name="pdf"))
