"""The vendored vectors must be the recorded ones."""

import pytest

from tests.vectors import DATA, SHARED


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/vectors is not beside this checkout")
def test_vendored_vectors_equal_the_shared_recording() -> None:
    assert DATA.read_bytes() == SHARED.read_bytes()


def test_vendored_vectors_hold_45_scenarios() -> None:
    from tests.vectors import scenarios

    assert len(scenarios()) == 45
