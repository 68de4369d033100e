import os

import pytest

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
