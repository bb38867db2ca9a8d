"""Test configuration: Qt off-screen, per-session user dirs, the shared real series, leak checks."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

# Qt must never try to open a display in tests; set before any Qt import.
os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("QT_QUICK_BACKEND", "software")
_session_home = Path(tempfile.mkdtemp(prefix="medmpt-test-home-"))
atexit.register(shutil.rmtree, _session_home, ignore_errors=True)  # each run left one behind
os.environ["MEDMPT_DATA_DIR"] = str(_session_home / "data")
os.environ["MEDMPT_LOG_DIR"] = str(_session_home / "log")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_SERIES = REPO_ROOT.parent / "shared" / "data" / "lung-pet-ct-dx-A0001"


@pytest.fixture(scope="session")
def real_series_dir() -> Path:
    """The shared real chest CT (Lung-PET-CT-Dx A0001, 64 slices); skips when it is absent."""
    if not (SHARED_SERIES.is_dir() and any(SHARED_SERIES.glob("*.dcm"))):
        pytest.skip(
            f"shared real CT series not found at {SHARED_SERIES} "
            "(expected ../shared/data/lung-pet-ct-dx-A0001 beside the repository)"
        )
    return SHARED_SERIES


@pytest.fixture(scope="session")
def gapped_series_dir(real_series_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the real series without its 31st to 33rd slices (counted from the feet, from 1):
    a 20 mm gap in the middle, as after an incomplete transfer."""
    import shutil

    import pydicom

    files = sorted(real_series_dir.glob("*.dcm"),
                   key=lambda f: float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]))
    gapped = tmp_path_factory.mktemp("gapped")
    for number, path in enumerate(files):
        if number not in (30, 31, 32):
            shutil.copy(path, gapped / path.name)
    return gapped


def _worker_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon}


@pytest.fixture(autouse=True)
def no_leaked_workers():
    """Fail any test that leaves a worker thread (Python or one of our Qt pools) running."""
    before = _worker_threads()
    yield
    deadline = time.monotonic() + 5.0
    leaked: set[threading.Thread] = set()
    pools_busy = 0
    while time.monotonic() < deadline:
        leaked = {t for t in _worker_threads() - before if t.is_alive()}
        pools_busy = _active_pool_work()
        if not leaked and not pools_busy:
            return
        time.sleep(0.02)
    names = ", ".join(sorted(t.name for t in leaked))
    pytest.fail(f"test left workers running: threads [{names}], {pools_busy} Qt pool task(s)")


def _active_pool_work() -> int:
    """Tasks still running on the workstation's Qt pools (0 when Qt was never loaded)."""
    import sys

    workers = sys.modules.get("ui.workers")
    if workers is None:
        return 0
    return workers.active_task_count()


@pytest.fixture(scope="session")
def random_package(tmp_path_factory) -> Path:
    """A complete tiny random-weight model package (built once per session with models/)."""
    try:
        from models.testing import make_random_package
    except ImportError as exc:  # torch or models/ not installed: end-to-end tests cannot run
        pytest.skip(f"cannot build a random model package (models/ or torch unavailable: {exc})")
    return make_random_package(tmp_path_factory.mktemp("random-package"), config="tiny", seed=0)


def _cuda_usable() -> bool:
    """True when ONNX Runtime really runs a graph on CUDA here (not merely lists the provider)."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return False
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [x], [y])
    # IR 8, as our exported graphs: onnx 1.23 writes IR 14, which ONNX Runtime 1.31 refuses.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    from inference.ort_runtime import preload_cuda_libraries

    preload_cuda_libraries()  # as the runtime does: CUDA/cuDNN from pip's nvidia-* packages
    ort.set_default_logger_severity(4)  # the CUDA loader's C++ error would clutter the test log
    try:
        session = ort.InferenceSession(model.SerializeToString(), providers=["CUDAExecutionProvider"])
    except Exception:  # noqa: BLE001 - no CUDA runtime or no GPU
        return False
    finally:
        ort.set_default_logger_severity(3)
    return session.get_providers()[0] == "CUDAExecutionProvider"


def pytest_collection_modifyitems(config, items):
    """Skip @pytest.mark.gpu tests, with a clear reason, where no CUDA GPU is usable."""
    if not any("gpu" in item.keywords for item in items) or _cuda_usable():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU with ONNX Runtime's CUDA provider (none usable here)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
