"""Fixtures shared by several test modules, and one torch thread per pytest-xdist worker.

Tests are laid out like the package (``tests/store/`` for ``mutascope.store``, ...);
``helpers.py`` and ``pagetools.py`` here are importable from every folder.
"""

import os

os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")  # as `import mutascope` sets it, before any test imports torch

import pytest

from pagetools import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """``mutascope.testing.tiny_model("llama")`` saved as a model directory (built once per worker;
    read it, never write into it): what a test passes as ``--model``."""
    from mutascope.testing import tiny_model

    path = tmp_path_factory.mktemp("tiny-llama")
    subject = tiny_model("llama")
    subject.model.save_pretrained(path)
    subject.tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} not found: install Debian's chromium (`apt-get install -y chromium`; `make test` does)"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="Python Playwright is not installed (test extra)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def pytest_configure(config):
    # `make test` runs two xdist workers on two cores: one torch thread each, so that two tests
    # share the machine instead of four threads fighting over it (results never depend on it).
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
