"""The bottom layer's runtime helpers: devices, dtypes, threads, memory release."""

import sys

import pytest
import torch

from practicum.errors import ConfigError
from practicum.runtime import parse_dtype, release_memory, resolve_device, torch_threads


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
