import os

import pytest
import yaml

# Nothing in the test suite may touch a model hub or the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A 10-clip manifest (the model and evaluation tests share it)."""
    from nabra.testing import tiny_manifest

    return tiny_manifest(tmp_path_factory.mktemp("corpus"), 10)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory, corpus):
    """A tiny thinker built on ``corpus``."""
    from nabra.testing import tiny_model_dir

    return tiny_model_dir(tmp_path_factory.mktemp("tiny"), corpus)


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory):
    from nabra.corpus.synth import SynthConfig, synthesize

    out = tmp_path_factory.mktemp("synth")
    synthesize(out, SynthConfig(utterances=60, seed=0, workers=2, long_fraction=0.0), progress=False)
    return out / "manifest.jsonl"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory, synth_corpus):
    from nabra.testing import tiny_model_dir

    return tiny_model_dir(tmp_path_factory.mktemp("tiny"), synth_corpus, hidden_size=64, intermediate_size=128)


@pytest.fixture(scope="session")
def tiny_nemotron(tmp_path_factory, synth_corpus):
    """A tiny Nemotron-3-Nano-Omni (the hybrid Mamba-attention family) built on the synthetic corpus."""
    from nabra.model.families.nemotron_h_omni import NEMOTRON_H_OMNI
    from nabra.model.tiny import TinyConfig, init_tiny

    return init_tiny(tmp_path_factory.mktemp("nemotron") / "tiny", synth_corpus, TinyConfig(vocab_size=512),
                     NEMOTRON_H_OMNI)


@pytest.fixture
def make_config(tmp_path, synth_corpus, tiny):
    """Write a small training recipe and return its path."""

    def make(name="run", **sections):
        cfg = {
            "output_dir": str(tmp_path / name),
            "data": {"manifest": str(synth_corpus), "dev_per_task": 2, "load_workers": 2},
            "model": {"path": str(tiny), "finetune": "full"},
            "schedule": {"name": "uniform"},
            "train": {"max_steps": 4, "batch_size": 8, "lr": 1e-3, "warmup_steps": 2, "save_every": 2,
                      "eval_every": 2, "seed": 0},
        }
        for section, values in sections.items():
            if isinstance(values, dict):
                cfg.setdefault(section, {}).update(values)
            else:
                cfg[section] = values
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False))  # label order is code order
        return path

    return make


@pytest.fixture(scope="session")
def lora_run(tmp_path_factory, synth_corpus, tiny):
    """A tiny LoRA run (6 steps) to export."""
    from nabra.config import load_config
    from nabra.train import train

    folder = tmp_path_factory.mktemp("export")
    cfg = {"output_dir": str(folder / "run"), "data": {"manifest": str(synth_corpus), "dev_per_task": 2},
           "model": {"path": str(tiny), "finetune": "lora", "lora": {"r": 4, "alpha": 8}},
           "schedule": {"name": "uniform"},
           "train": {"max_steps": 6, "batch_size": 8, "lr": 5e-2, "warmup_steps": 1, "save_every": 0, "eval_every": 0}}
    (folder / "run.yaml").write_text(yaml.safe_dump(cfg))
    return train(load_config(folder / "run.yaml"), progress=False, log=lambda *_: None)
