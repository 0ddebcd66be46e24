from __future__ import annotations

import pytest

from tests.upload.helpers import zip_bomb


@pytest.fixture(scope="session")
def bomb_zip(tmp_path_factory):
    """1 GB of zeros compressed into a zip of about 4.7 MB, made once per run."""
    return zip_bomb(tmp_path_factory.mktemp("bomb") / "bomb.zip")
