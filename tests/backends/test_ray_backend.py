"""The Ray backend on a local Ray instance with 2 CPU workers: identical to local, faults survived."""

import os
import signal
import subprocess
import sys
import time

import pytest

ray = pytest.importorskip("ray")

from helpers import screen_of, tables, text_probes  # noqa: E402
from mutascope.backends.ray import RayBackend  # noqa: E402
from mutascope.errors import MutascopeError  # noqa: E402
from mutascope.model.subject import load_model  # noqa: E402
from mutascope.plan import PlanSpec  # noqa: E402
from mutascope.testing import tiny_model  # noqa: E402

# Under pytest-xdist every test of this module runs on one worker, beside at most one other test.
pytestmark = pytest.mark.xdist_group("ray")

SPEC = PlanSpec.parse(layers="0,2", matrices="q,v,down", kinds="max,min")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="error")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local_file(tmp_path_factory, tiny_model_dir):
    path = tmp_path_factory.mktemp("local") / "local.duckdb"
    screen_of(load_model(tiny_model_dir), text_probes(6), SPEC, path, chunk_size=8).run()
    return path


def _backend(tiny_model_dir, subject, **kwargs):
    return RayBackend(str(tiny_model_dir), subject.content_hash(), workers=2, threads_per_worker=1, **kwargs)


def test_two_workers_give_the_local_tables_even_when_one_is_killed(cluster, tiny_model_dir, local_file, tmp_path):
    subject = load_model(tiny_model_dir)
    backend = _backend(tiny_model_dir, subject)
    try:
        assert len(set(backend.worker_pids())) == 2
        screen_of(subject, text_probes(6), SPEC, tmp_path / "ray.duckdb", chunk_size=8, backend=backend).run()
        assert tables(tmp_path / "ray.duckdb") == tables(local_file)
        killed = []

        def kill_a_worker(done, total):
            if done >= 8 and not killed:  # mid-screen: one chunk committed, others in flight
                pid = backend.worker_pids()[0]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        screen_of(subject, text_probes(6), SPEC, tmp_path / "killed.duckdb", chunk_size=8, backend=backend).run(
            kill_a_worker
        )
        assert killed and backend.failures >= 1 and killed[0] not in backend.worker_pids()
        assert tables(tmp_path / "killed.duckdb") == tables(local_file)

        def ctrl_c(done, total):
            if done >= 16:
                raise KeyboardInterrupt

        pids = backend.worker_pids()
        with pytest.raises(KeyboardInterrupt):  # Ctrl-C: the file keeps what was committed ...
            screen_of(subject, text_probes(6), SPEC, tmp_path / "stopped.duckdb", chunk_size=8, backend=backend).run(
                ctrl_c
            )
    finally:
        backend.close()
    deadline = time.monotonic() + 60  # closing killed the workers
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(_alive(pid) for pid in pids)
    # ... and resumes locally to the same tables
    screen_of(subject, text_probes(6), SPEC, tmp_path / "stopped.duckdb", chunk_size=8).run()
    assert tables(tmp_path / "stopped.duckdb") == tables(local_file)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"  # a zombie is dead too
    except (ProcessLookupError, FileNotFoundError):
        return False


def test_a_worker_with_other_weights_is_refused_naming_its_node(cluster, tiny_model_dir, tmp_path):
    other = tmp_path / "other"
    changed = tiny_model("llama", seed=4)
    changed.model.save_pretrained(other)
    changed.tokenizer.save_pretrained(other)
    with pytest.raises(MutascopeError, match=r"Ray worker on node .* loaded .* not the driver's"):
        RayBackend(str(other), load_model(tiny_model_dir).content_hash(), workers=1)


def test_resume_after_the_driver_is_killed(tiny_model_dir, local_file, tmp_path):
    """The driver (with its own local Ray instance) is SIGKILLed mid-screen; a local rerun completes it."""
    out = tmp_path / "r.duckdb"
    args = [
        sys.executable,
        "-m",
        "mutascope",
        "screen",
        "--model",
        str(tiny_model_dir),
        "--probe",
        "hello.yaml",
        "--layers",
        "0,2",
        "--matrices",
        "q,v,down",
        "--chunk-size",
        "8",
        "--workers",
        "2",
        "--out",
        str(out),
    ]
    (tmp_path / "hello.yaml").write_text(
        "- {id: hello, text: 'Hello world, the', max_new_tokens: 6, decoding: greedy}\n"
        "- {id: story, text: Once upon a time, max_new_tokens: 6, decoding: 'sample:0.8:7'}\n"
    )
    stages = tmp_path / "stages"  # what the driver reports (mutascope.interrupts.stage)
    proc = subprocess.Popen(
        args,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={**os.environ, "MUTASCOPE_STAGE_FILE": str(stages)},
    )
    try:
        deadline = time.monotonic() + 300  # mid-screen: a chunk of this run committed, others in flight
        while not (stages.exists() and "chunk" in stages.read_text().split()):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                out, err = proc.communicate()
                raise AssertionError(f"no chunk committed (exit {proc.returncode}): {err[-3000:]}")
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the Ray processes the killed driver started
        except ProcessLookupError:
            pass
    rerun = subprocess.run(args[:-4] + ["--out", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "this run" in rerun.stdout
    assert tables(out) == tables(local_file)


def test_without_ray_the_options_say_how_to_install_it(tiny_model_dir, tmp_path):
    code = (
        "import sys; sys.modules['ray'] = None; sys.argv = ['mutascope', 'screen', '--model', sys.argv[1], "
        "'--probe', 'python', '--layers', '0', '--matrices', 'q', '--max-new-tokens', '2', '--workers', '2', "
        "'--out', sys.argv[2]]; from mutascope.__main__ import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tiny_model_dir), str(tmp_path / "r.duckdb")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and "pip install 'mutascope[ray]'" in lines[0], done.stderr


@pytest.mark.real_model
def test_smollm2_with_two_workers_is_identical_to_the_local_run(cluster, tmp_path):
    from mutascope.model.subject import DEFAULT_MODEL
    from mutascope.probes import Decoding, Probe

    subject = load_model()
    probes = [
        Probe("greedy", "The life cycle of Drosophila:", 12, Decoding("greedy")),
        Probe("sampled", "The life cycle of Drosophila:", 12, Decoding("sample", 0.7, 0)),
    ]
    spec = PlanSpec.parse(layers="28-29", matrices="v", kinds="max,min")  # 108 mutants, 7 chunks
    screen_of(subject, probes, spec, tmp_path / "local.duckdb", chunk_size=16).run()
    backend = RayBackend(DEFAULT_MODEL, subject.content_hash(), workers=2)
    try:
        screen_of(subject, probes, spec, tmp_path / "ray.duckdb", chunk_size=16, backend=backend).run()
    finally:
        backend.close()
    assert tables(tmp_path / "ray.duckdb") == tables(tmp_path / "local.duckdb")


def test_two_workers_in_predicted_order_give_the_local_tables(cluster, tiny_model_dir, local_file, tmp_path):
    subject = load_model(tiny_model_dir)
    backend = _backend(tiny_model_dir, subject)
    try:
        out = tmp_path / "predicted.duckdb"
        screen_of(subject, text_probes(6), SPEC, out, chunk_size=8, backend=backend, order="predicted").run()
        assert tables(out) == tables(local_file)
    finally:
        backend.close()
