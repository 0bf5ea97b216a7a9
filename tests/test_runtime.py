"""The bottom layer's runtime helpers: devices, dtypes, threads, the heap policy and memory release."""

import sys

import pytest
import torch

from practicum.errors import ConfigError
from practicum.heap import release_memory, steady_heap
from practicum.runtime import parse_dtype, resolve_device, torch_threads


def test_devices_dtypes_and_threads():
    assert resolve_device("cpu").type == "cpu"
    assert parse_dtype("bf16") is torch.bfloat16 and parse_dtype(None) is torch.float32
    with pytest.raises(ConfigError):
        parse_dtype("fp8")
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_release_memory_gives_freed_heap_back_on_linux():
    def rss_mb():
        return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024

    blocks = [torch.ones(16384) for _ in range(3000)]  # 64 KB each: heap, not mmap
    del blocks[::2]  # ~94 MB of holes between live blocks: free() alone keeps them
    if not sys.platform.startswith("linux"):
        release_memory()  # a no-op elsewhere, never an error
        return
    before = rss_mb()
    release_memory()
    assert before - rss_mb() > 40
    assert len(blocks) == 1500 and float(blocks[-1][0]) == 1.0  # live tensors untouched


STEP_PATTERN = """
import resource, sys
import numpy as np
from practicum.heap import steady_heap
if sys.argv[1] == "steady":
    assert steady_heap() is True
def step():  # a training step's activations: mixed sizes, alive together, then all freed
    live = [np.ones(mb << 20, dtype=np.uint8) for mb in (12, 3, 6, 1, 12)]
    return sum(int(a[-1]) for a in live)
step()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
"""


def test_steady_heap_reuses_freed_tensor_blocks_without_page_faults():
    import subprocess

    if not sys.platform.startswith("linux"):
        assert steady_heap() in (True, False)  # nothing to set elsewhere, never an error
        return

    def faults(policy: str) -> int:  # a fresh process each: the heap's history matters
        out = subprocess.run([sys.executable, "-c", STEP_PATTERN, policy], capture_output=True, text=True, check=True)
        return int(out.stdout.split()[-1])

    # glibc's default returns blocks of this size and faults them in again (~50,000 faults on the
    # dev box); kept, 20 more steps fault no page in
    assert faults("steady") < 100 < faults("default")


def test_forget_loaded_models_keeps_the_registered_ones():
    from practicum.diffusion import service

    spec = service.ModelSpec("builtin:digits")
    loaded = service.load_model(spec)
    assert service.load_model(spec) is loaded  # cached per process
    name = service.register_model("a-test-model", loaded)
    try:
        service.forget_loaded_models()
        assert spec not in service._MODELS and name in service.registered_models()
        assert service.load_model(spec) is not loaded  # opened again
    finally:
        service.register_model(name, None)
        service.forget_loaded_models()
