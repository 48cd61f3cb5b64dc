"""What the Rasa tests (tests/test_rasa_engine.py) hand to the session's terminal summary."""

from __future__ import annotations

import pytest

# Figures the Rasa tests measured, printed in the summary (tests/conftest.py).
RASA_FIGURES = pytest.StashKey[dict]()
