import pytest

from nabra.testing import tiny_manifest, tiny_model_dir


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    return tiny_manifest(tmp_path_factory.mktemp("corpus"), 10)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory, corpus):
    return tiny_model_dir(tmp_path_factory.mktemp("tiny"), corpus)
