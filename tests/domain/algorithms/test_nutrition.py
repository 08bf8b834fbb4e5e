"""Energy targets, with values worked out by hand."""

from __future__ import annotations

import pytest

from domain.algorithms import nutrition


def test_mifflin_st_jeor_by_hand():
    # 10·75 + 6.25·180 − 5·30 + 5 = 750 + 1125 − 150 + 5
    assert nutrition.mifflin_st_jeor("M", 30, 180, 75) == pytest.approx(1730.0)
    # 10·60 + 6.25·165 − 5·30 − 161 = 600 + 1031.25 − 150 − 161
    assert nutrition.mifflin_st_jeor("F", 30, 165, 60) == pytest.approx(1320.25)
    # neither: the mean constant, −78
    assert nutrition.mifflin_st_jeor(None, 30, 165, 60) == pytest.approx(1403.25)


def test_met_energy_counts_only_above_rest():
    # running 9.8 MET for 1 h at 70 kg: (9.8 − 1) × 70 × 1
    assert nutrition.met_energy_kcal("running", 3600, 70) == pytest.approx(616.0)
    assert nutrition.met_energy_kcal("unknown-sport", 1800, 80) == pytest.approx(200.0)  # (6 − 1) × 80 × 0.5


def test_heart_rate_energy_by_hand():
    # men: −55.0969 + 0.6309·150 + 0.1988·70 + 0.2017·30 = 59.5051 kJ/min → /4.184 × 60 min = 853.33 kcal,
    # less the basal share of that hour, 1730 / 24 = 72.08
    got = nutrition.heart_rate_energy_kcal("M", 30, 70, 150, 3600, 1730)
    assert got == pytest.approx(853.33 - 72.08, abs=0.05)
    assert nutrition.heart_rate_energy_kcal(None, 30, 70, 150, 3600, 1730) is None
    assert nutrition.heart_rate_energy_kcal("F", 30, 70, 80, 3600, 1730) is None


def test_activity_energy_prefers_the_device_then_heart_rate_then_met():
    kwargs = {"sex": "M", "age_years": 30, "weight_kg": 70.0, "basal_kcal_day": 1730.0}
    assert nutrition.activity_energy_kcal(nutrition.Workout("running", 3600, device_kcal=700.0), **kwargs) == (700.0,
                                                                                                         "device")
    kcal, how = nutrition.activity_energy_kcal(nutrition.Workout("running", 3600, avg_hr=150.0), **kwargs)
    assert how == "heart_rate" and kcal == pytest.approx(781.25, abs=0.05)
    assert nutrition.activity_energy_kcal(nutrition.Workout("running", 3600), **kwargs) == (pytest.approx(616.0), "met")


def test_targets_and_macro_split():
    assert nutrition.energy_target_kcal(1730, 616) == pytest.approx(1730 * 1.2 + 616)
    grams = nutrition.macro_targets_g(2000, 20, 50, 30)
    assert grams == {"protein_g": pytest.approx(100.0), "carbohydrate_g": pytest.approx(250.0),
                     "fat_g": pytest.approx(600 / 9)}


def test_scaling_summing_and_recipes():
    banana = {"energy_kcal": 89.0, "protein_g": 1.09, "iron_mg": None}
    assert nutrition.scale_nutrients(banana, 150) == {"energy_kcal": pytest.approx(133.5),
                                                      "protein_g": pytest.approx(1.635), "iron_mg": None}
    totals = nutrition.sum_nutrients([{"energy_kcal": 100.0}, {"energy_kcal": 50.0, "iron_mg": 1.0}],
                                     ["energy_kcal", "iron_mg"])
    assert totals == {"energy_kcal": 150.0, "iron_mg": 1.0}
    # 100 g of banana (89 kcal) + 300 g of milk at 61 kcal/100 g = 272 kcal in 400 g → 68 kcal/100 g
    mix = nutrition.per_100g([({"energy_kcal": 89.0}, 100.0), ({"energy_kcal": 61.0}, 300.0)], ["energy_kcal"])
    assert mix == {"energy_kcal": pytest.approx(68.0)}
