"""Each test module gets its own ROS domain, and test workers running side by side never share one."""

from __future__ import annotations

from rosproc import module_domain_id


def _domains(environ: dict[str, str]) -> set[int]:
    return {module_domain_id(environ, seed) for seed in range(2000)}


def test_one_process_draws_from_every_domain_1_to_100() -> None:
    assert _domains({}) == set(range(1, 101))


def test_two_workers_draw_from_disjoint_halves() -> None:
    first = _domains({"PYTEST_XDIST_WORKER": "gw0", "PYTEST_XDIST_WORKER_COUNT": "2"})
    second = _domains({"PYTEST_XDIST_WORKER": "gw1", "PYTEST_XDIST_WORKER_COUNT": "2"})
    assert first.isdisjoint(second)
    assert first | second == set(range(1, 101))
    assert len(first) == len(second) == 50


def test_more_workers_than_domains_still_get_one() -> None:
    env = {"PYTEST_XDIST_WORKER": "gw150", "PYTEST_XDIST_WORKER_COUNT": "200"}
    assert _domains(env) == {50}
