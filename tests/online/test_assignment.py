"""Experiment assignment and the report's statistics, without a database."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import chi2_contingency

from app.services.experiment_report import two_proportion_z_test
from app.services.experiments import Arm, ExperimentSpec
from app.services.request import Strategy

NOW = datetime.now(UTC)


def experiment(*traffic: float, name: str = "exp") -> ExperimentSpec:
    arms = tuple(Arm(f"arm{i}", Strategy.HYBRID, None, t) for i, t in enumerate(traffic))
    return ExperimentSpec(name, None, True, arms, NOW, NOW, None)


def test_half_and_half_splits_ten_thousand_users_within_three_percent() -> None:
    spec = experiment(0.5, 0.5)
    counts = Counter(arm.name for i in range(10_000) if (arm := spec.assign(f"user-{i}")) is not None)
    assert sum(counts.values()) == 10_000
    assert all(abs(n - 5_000) <= 300 for n in counts.values()), counts


def test_traffic_below_one_leaves_the_rest_unassigned_in_proportion() -> None:
    spec = experiment(0.1, 0.3)
    counts = Counter(a.name if (a := spec.assign(f"u{i}")) else None for i in range(10_000))
    assert abs(counts["arm0"] - 1_000) <= 300 and abs(counts["arm1"] - 3_000) <= 300
    assert abs(counts[None] - 6_000) <= 300


def test_each_experiment_hashes_independently() -> None:
    first, second = experiment(0.5, 0.5, name="a"), experiment(0.5, 0.5, name="b")
    same = sum(first.assign(f"u{i}") == second.assign(f"u{i}") for i in range(4_000))
    assert 1_700 <= same <= 2_300  # independent halves agree about half the time


@given(st.text(min_size=1, max_size=50), st.lists(st.floats(0.01, 0.2), min_size=1, max_size=5))
def test_assignment_is_stable_and_inside_the_arms(subject: str, traffic: list[float]) -> None:
    spec = experiment(*traffic)
    arm = spec.assign(subject)
    assert arm == spec.assign(subject)
    assert arm is None or arm in spec.arms


def test_z_test_matches_the_chi_square_test() -> None:
    z, p = two_proportion_z_test(100, 1_000, 150, 1_000) or (0.0, 1.0)
    chi2, p_chi, *_ = chi2_contingency([[100, 900], [150, 850]], correction=False)
    assert abs(z**2 - chi2) < 1e-9 and abs(p - p_chi) < 1e-12
    assert z > 0 and p < 0.01
    assert two_proportion_z_test(0, 0, 1, 10) is None
    assert two_proportion_z_test(0, 10, 0, 10) is None
