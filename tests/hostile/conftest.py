"""The `sandbox` fixture of the hostile-input tests; see harness.py for the contract."""

from __future__ import annotations

import pytest

from harness import PROJECT_ROOT, SHARED_SURVEYS, Sandbox, snapshot


@pytest.fixture
def sandbox(tmp_path, monkeypatch, capsys):
    """A private cache, home and data directory; afterwards, nothing outside them changed."""
    from engine.models import DEFAULT_MODEL_NAME, default_model_folder

    model_folder = default_model_folder()  # converted once, before the snapshot
    cache, home, data_dir = tmp_path / "cache", tmp_path / "home", tmp_path / "data"
    for folder in (cache / "models", home, data_dir):
        folder.mkdir(parents=True)
    (cache / "models" / DEFAULT_MODEL_NAME).symlink_to(model_folder, target_is_directory=True)
    # The project's source may be edited while tests run; its layout, its shipped assets, the
    # shared surveys, the converted model and the test's neighbours may not change.
    protected = [(PROJECT_ROOT, 2, None, True), (PROJECT_ROOT / "assets", None, None), (SHARED_SURVEYS, None, None),
                 (model_folder, None, None), (tmp_path.parent, 1, tmp_path)]
    before = [snapshot(*place) for place in protected]
    monkeypatch.setenv("FOCUSGROUP_CACHE", str(cache))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("FOCUSGROUP_DATA_DIR", str(data_dir))
    from engine.surveys import registry

    registry._load.cache_clear()
    yield Sandbox(tmp_path, cache, data_dir, home, capsys)
    registry._load.cache_clear()
    for place, earlier in zip(protected, before):
        later = snapshot(*place)
        changed = sorted(set(earlier.items()) ^ set(later.items()))
        assert not changed, f"a hostile input changed {place[0]}: {changed[:10]}"
