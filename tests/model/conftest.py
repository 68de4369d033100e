import pytest


@pytest.fixture(scope="session")
def bundle(tiny_dir):
    from nabra.model import load

    return load(tiny_dir)
