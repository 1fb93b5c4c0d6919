"""Every results file in results/ still comes out of the code: its first row is run again and its
numbers compared, to the bit on the machine that made it (ARCHITECTURE.md, "Stored results"). When
a change to the code changes a stored result, this fails until the file is made again with the
command in its provenance."""
from pathlib import Path

import pytest

from loopy_edu import sweep

RESULTS = sorted((Path(__file__).resolve().parents[1] / "results").glob("*.json"))


def test_the_chapters_stored_results_are_there():
    assert {p.stem for p in RESULTS} >= {"murray", "continual"}


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_a_stored_result_is_reproducible(path):
    replay = sweep.replay(path)
    print(replay)
    assert sum(replay.compared.values()) > 0
    if not replay.same_machine:
        made_on = sweep.load(path).machine.iloc[0]
        pytest.skip(f"{path.name} was made on {made_on}; this is {sweep.fingerprint()}: "
                    f"its bits can only be checked on the machine that made it ({replay.verdict})")
    assert replay.ok, replay


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_a_stored_result_is_small_and_says_where_it_came_from(path):
    assert path.stat().st_size < 1_000_000, "results hold numbers and curves, not weights or data"
    frame = sweep.load(path)
    prov = frame.attrs["provenance"]
    assert prov["git_clean"] is True and len(prov["git_commit"]) == 40
    assert prov["command"].startswith("python -m loopy_edu.sweep run ")
    assert (frame.status == "ok").all() and (frame.wall_s > 0).all()
