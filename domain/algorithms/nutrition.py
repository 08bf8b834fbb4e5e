"""Energy and nutrient targets: basal rate, the energy of an activity, the day's target and its macro split.

Pure: numbers in, numbers out. ``domain.health.nutrition`` gathers the athlete's facts and calls these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: kcal per gram of each macronutrient (Atwater's general factors).
KCAL_PER_G = {"protein_g": 4.0, "carbohydrate_g": 4.0, "fat_g": 9.0}
#: The day's energy beyond the basal rate and the logged workouts (walking about, digesting): a sedentary
#: multiplier, so that workouts are counted once, from their own records.
DAILY_LIFE_FACTOR = 1.2
KCAL_PER_KJ = 1 / 4.184

#: Metabolic equivalents of a moderate session of each sport (a MET is 1 kcal per kg per hour at rest).
METS = {"running": 9.8, "cycling": 7.5, "swimming": 7.0, "walking": 3.5, "hiking": 6.0, "strength": 5.0}
DEFAULT_MET = 6.0


def mifflin_st_jeor(sex: str | None, age_years: float, height_cm: float, weight_kg: float) -> float:
    """Resting energy in kcal/day: 10·kg + 6.25·cm − 5·years + 5 (men) or − 161 (women). For any other or an
    unknown sex the mean of the two constants (−78), so no one is pushed to either extreme."""
    base = 10.0 * weight_kg + 6.25 * height_cm - 5.0 * age_years
    return base + {"M": 5.0, "F": -161.0}.get(sex or "", -78.0)


def met_energy_kcal(sport: str | None, duration_s: float, weight_kg: float) -> float:
    """Energy of a workout above rest from its sport's MET: (MET − 1) × kg × h. The resting 1 MET is already
    in the basal rate, so it is not counted twice."""
    met = METS.get(sport or "", DEFAULT_MET)
    return max(0.0, (met - 1.0) * weight_kg * duration_s / 3600.0)


def heart_rate_energy_kcal(sex: str | None, age_years: float, weight_kg: float, avg_hr: float,
                           duration_s: float, basal_kcal_day: float) -> float | None:
    """Energy above rest from the average heart rate (the Keytel et al. 2005 regressions, kJ/min), minus the
    basal share of the same minutes. None where the regression does not apply (sex unknown, a heart rate
    below 90 bpm where it is no better than a guess)."""
    if sex not in ("M", "F") or avg_hr < 90:
        return None
    minutes = duration_s / 60.0
    if sex == "M":
        kj_min = -55.0969 + 0.6309 * avg_hr + 0.1988 * weight_kg + 0.2017 * age_years
    else:
        kj_min = -20.4022 + 0.4472 * avg_hr - 0.1263 * weight_kg + 0.074 * age_years
    gross = max(0.0, kj_min * KCAL_PER_KJ * minutes)
    return max(0.0, gross - basal_kcal_day * minutes / 1440.0)


@dataclass(frozen=True)
class Workout:
    sport: str | None
    duration_s: float
    device_kcal: float | None = None
    avg_hr: float | None = None


def activity_energy_kcal(workout: Workout, *, sex: str | None, age_years: float | None, weight_kg: float,
                         basal_kcal_day: float) -> tuple[float, str]:
    """The workout's energy and how it was found: the device's figure where the file has one, otherwise from
    heart rate, otherwise from the sport's MET."""
    if workout.device_kcal is not None and workout.device_kcal > 0:
        return float(workout.device_kcal), "device"
    if workout.avg_hr is not None and age_years is not None:
        estimate = heart_rate_energy_kcal(sex, age_years, weight_kg, workout.avg_hr, workout.duration_s,
                                          basal_kcal_day)
        if estimate is not None:
            return estimate, "heart_rate"
    return met_energy_kcal(workout.sport, workout.duration_s, weight_kg), "met"


def energy_target_kcal(basal_kcal_day: float, activity_kcal: float) -> float:
    return basal_kcal_day * DAILY_LIFE_FACTOR + activity_kcal


def macro_targets_g(energy_kcal: float, protein_pct: int, carbohydrate_pct: int, fat_pct: int) -> dict[str, float]:
    """Grams of each macronutrient that give the split of ``energy_kcal`` (percentages of energy)."""
    return {
        "protein_g": energy_kcal * protein_pct / 100.0 / KCAL_PER_G["protein_g"],
        "carbohydrate_g": energy_kcal * carbohydrate_pct / 100.0 / KCAL_PER_G["carbohydrate_g"],
        "fat_g": energy_kcal * fat_pct / 100.0 / KCAL_PER_G["fat_g"],
    }


def scale_nutrients(per_100g: Mapping[str, float | None], grams: float) -> dict[str, float | None]:
    """The nutrients of ``grams`` of a food given per 100 g (a value the source does not have stays None)."""
    return {name: (None if value is None else value * grams / 100.0) for name, value in per_100g.items()}


def sum_nutrients(items: Iterable[Mapping[str, float | None]], names: Iterable[str]) -> dict[str, float]:
    """Totals per nutrient; an unknown value counts as zero (the total is then a lower bound)."""
    keys = list(names)
    totals = dict.fromkeys(keys, 0.0)
    for item in items:
        for key in keys:
            value = item.get(key)
            if value is not None:
                totals[key] += float(value)
    return totals


def per_100g(items: Iterable[tuple[Mapping[str, float | None], float]], names: Iterable[str]) -> dict[str, float]:
    """Nutrients per 100 g of a mix of (per-100 g values, grams): a recipe from its ingredients."""
    pairs = list(items)
    total_g = sum(grams for _, grams in pairs)
    keys = list(names)
    if total_g <= 0:
        return dict.fromkeys(keys, 0.0)
    sums = sum_nutrients((scale_nutrients(values, grams) for values, grams in pairs), keys)
    return {key: value * 100.0 / total_g for key, value in sums.items()}
