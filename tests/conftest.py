import os

# Offline by construction: nothing in the suite may reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

# Module- and session-scoped fixtures (tiny models trained once) run before any function
# fixture, so the process default is one thread too.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Every test runs on one torch thread, restored afterwards.

    The tests' tensors are tiny, and on a busy 2-core box two threads per process were measured
    10-20x slower than one (contention, not compute). Per test, because code under test (the
    engine's workers) may change the count.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
