import os

# Offline by construction: nothing in the suite may reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402

# One thread: the tests' tensors are tiny, and on a busy 2-core box two threads per process
# were measured ~20x slower than one (contention, not compute).
torch.set_num_threads(1)
