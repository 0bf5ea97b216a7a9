"""Issue 16: per-model sampling defaults, class maps (WordNet id → name / ImageNet index), prompts."""

from __future__ import annotations

import json

import pytest

from practicum.diffusion.model_defaults import (
    DIT_DEFAULTS,
    SD_DEFAULTS,
    default_sampling,
    model_class_ids,
    prompt_names,
    read_class_map,
)
from practicum.errors import ConfigError, ModelError

LOC = "n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\nn01484850 great white shark\n"


def test_loc_synset_mapping_gives_names_and_imagenet_indices(tmp_path):
    path = tmp_path / "LOC_synset_mapping.txt"
    path.write_text(LOC)
    m = read_class_map(path)
    assert m["n01440764"].name == "tench" and m["n01440764"].index == 0
    assert m["n01484850"].name == "great white shark" and m["n01484850"].index == 2


def test_csv_and_json_maps(tmp_path):
    (tmp_path / "m.csv").write_text("wnid,name,index\nn01443537,goldfish,1\n")
    (tmp_path / "m.json").write_text(json.dumps({"n01443537": {"name": "goldfish, Carassius", "index": 1},
                                                 "cat": "tabby cat"}))
    assert read_class_map(tmp_path / "m.csv")["n01443537"].index == 1
    j = read_class_map(tmp_path / "m.json")
    assert j["n01443537"].name == "goldfish" and j["cat"].index is None
    (tmp_path / "bad.txt").write_text("n01443537\n")
    with pytest.raises(ConfigError, match="no name"):
        read_class_map(tmp_path / "bad.txt")


def test_prompts_refuse_wordnet_ids_without_a_map(tmp_path):
    path = tmp_path / "loc.txt"
    path.write_text(LOC)
    with pytest.raises(ConfigError, match="WordNet id"):
        prompt_names(["n01440764"])
    assert prompt_names(["n01440764", "n01443537"], read_class_map(path), "a photo of a {name}") == [
        "a photo of a tench", "a photo of a goldfish"]
    assert prompt_names(["golden_retriever"]) == ["golden retriever"]
    with pytest.raises(ConfigError, match="placeholder"):
        prompt_names(["cat"], template="a photo")


def test_dit_class_ids_are_mapped_and_checked(tmp_path):
    path = tmp_path / "loc.txt"
    path.write_text(LOC)
    m = read_class_map(path)
    # an ImageNet subset with two classes, sorted by folder, on a 1000-class model
    assert model_class_ids(["n01443537", "n01484850"], 1000, m) == [1, 2]
    with pytest.raises(ModelError, match="1000 classes but the data has 2"):
        model_class_ids(["n01443537", "n01484850"], 1000, None)  # no silent i → i labelling
    assert model_class_ids(["a", "b"], 2, None) is None
    with pytest.raises(ConfigError, match="places no model class"):
        model_class_ids(["n01443537", "n99999999"], 1000, m)
    with pytest.raises(ConfigError, match="outside"):
        model_class_ids(["n01484850"], 2, m)


def test_sampling_defaults_by_family():
    from test_precision import make

    assert default_sampling(make("sd")) == SD_DEFAULTS and SD_DEFAULTS["steps"] == 50
    assert SD_DEFAULTS["cfg_scale"] == 4.0  # DP paper λ = 3 ⇒ s = 1 + λ
    assert default_sampling(make("dit")) == DIT_DEFAULTS and DIT_DEFAULTS["scheduler"] == "ddpm"
    from practicum.diffusion.builtin import load_builtin

    assert default_sampling(load_builtin())["cfg_scale"] == 2.0  # the built-in keeps its tuned values
