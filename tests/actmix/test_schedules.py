import math

import pytest

from actmix.config import EntropySchedule, TemperatureSchedule
from actmix.schedules import entropy_weight_at, learning_rate_at, temperature_at


def test_linear_temperature():
    schedule = TemperatureSchedule(initial=1.0, final=0.01, anneal_epochs=100, schedule="linear")
    assert temperature_at(0, schedule) == 1.0
    assert temperature_at(50, schedule) == pytest.approx(0.505)
    assert temperature_at(100, schedule) == pytest.approx(0.01)
    assert temperature_at(180, schedule) == pytest.approx(0.01)  # held


def test_exponential_temperature_is_geometric():
    schedule = TemperatureSchedule(
        initial=1.0, final=0.01, anneal_epochs=10, schedule="exponential"
    )
    assert temperature_at(5, schedule) == pytest.approx(0.1)
    assert temperature_at(10, schedule) == pytest.approx(0.01)


def test_cosine_temperature():
    schedule = TemperatureSchedule(initial=2.0, final=0.5, anneal_epochs=10, schedule="cosine")
    assert temperature_at(0, schedule) == pytest.approx(2.0)
    assert temperature_at(5, schedule) == pytest.approx(1.25)
    assert temperature_at(10, schedule) == pytest.approx(0.5)


def test_zero_anneal_epochs_jumps_to_final():
    assert temperature_at(0, TemperatureSchedule(initial=1.0, final=0.2, anneal_epochs=0)) == 0.2


def test_entropy_warmup():
    schedule = EntropySchedule(lambda_max=0.01, warmup_epochs=50)
    assert entropy_weight_at(0, schedule) == 0.0
    assert entropy_weight_at(25, schedule) == pytest.approx(0.005)
    assert entropy_weight_at(90, schedule) == pytest.approx(0.01)
    assert entropy_weight_at(3, EntropySchedule(lambda_max=0.5, warmup_epochs=0)) == 0.5


def test_cosine_learning_rate():
    assert learning_rate_at(0, lr=1e-3, epochs=100, eta_min_factor=0.01) == pytest.approx(1e-3)
    middle = 1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + math.cos(math.pi * 0.5))
    assert learning_rate_at(50, lr=1e-3, epochs=100, eta_min_factor=0.01) == pytest.approx(middle)
    assert learning_rate_at(100, lr=1e-3, epochs=100, eta_min_factor=0.01) == pytest.approx(1e-5)
