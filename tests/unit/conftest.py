"""Unit-test fixtures shared across modules."""

import pytest


@pytest.fixture(scope="session")
def extractor():
    """VGG19 with seeded random weights (seed 0, float32, no XLA), built once for the whole session.

    Tests only read it; the compiled steps it keeps (worker/engine/steps.py) grow with each new shape but give
    the same numbers whoever traced them first. A test that counts traces builds its own extractor.
    """
    from worker.engine.vgg import FeatureExtractor

    return FeatureExtractor(weights="random", seed=0)
