"""Apple Health ``export.xml`` files made here: the document type declaration iOS 16 writes (whose internal
subset is not well-formed), records of the kinds we import and of those we skip."""

from __future__ import annotations

from collections.abc import Iterator

PROLOG = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!-- HealthKit Export Version: 13 -->
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary|ClinicalRecord)*)>
<!ATTLIST HealthData
  locale CDATA #REQUIRED
>
<!ATTLIST Record
  type          CDATA #REQUIRED
  unit          CDATA #IMPLIED
  value         CDATA #IMPLIED
  sourceName    CDATA #REQUIRED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
<!ATTLIST ExportDate
  value CDATA #REQUIRED
  HKCharacteristicTypeIdentifierDateOfBirth         CDATA #REQUIRED
  HKCharacteristicTypeIdentifierBiologicalSex       CDATA #REQUIRED
  HKCharacteristicTypeIdentifierBloodType           CDATA #REQUIRED
  HKCharacteristicTypeIdentifierFitzpatrickSkinType CDATA #REQUIRED
  HKCharacteristicTypeIdentifierCardioFitnessMedicationsUse CDATA #IMPLIED
>
<!ELEMENT InstantaneousBeatsPerMinute EMPTY>
<!ATTLIST InstantaneousBeatsPerMinute
  bpm  CDATA #REQUIRED
  time CDATA #REQUIRED
>
<!ATTLIST Workout
  workoutActivityType   CDATA #REQUIRED
  durationUnit          CDATA #IMPLIED
  (Audio Exposure Event)
>
]>
<HealthData locale="en_US">
 <ExportDate value="2026-11-30 08:00:00 +0100"/>
"""
EPILOGUE = b"</HealthData>\n"


def record(kind: str, start: str, end: str | None = None, value: str = "", unit: str = "",
           source: str = "Apple Watch") -> bytes:
    unit_attr = f' unit="{unit}"' if unit else ""
    return (f' <Record type="{kind}" sourceName="{source}"{unit_attr} creationDate="{start}" startDate="{start}" '
            f'endDate="{end or start}" value="{value}"/>\n').encode()


def small_export() -> bytes:
    """One night with stages, a morning's figures, water and a meal, plus records we don't import."""
    night = [("HKCategoryValueSleepAnalysisInBed", "22:30", "06:40"), ("HKCategoryValueSleepAnalysisAsleepCore",
              "22:45", "01:00"), ("HKCategoryValueSleepAnalysisAsleepDeep", "01:00", "02:10"),
             ("HKCategoryValueSleepAnalysisAsleepREM", "02:10", "03:00"),
             ("HKCategoryValueSleepAnalysisAsleepCore", "03:00", "06:30")]
    body = []
    for stage, a, b in night:
        day_a = "2026-11-28" if a >= "12:00" else "2026-11-29"
        day_b = "2026-11-28" if b >= "12:00" else "2026-11-29"
        body.append(record("HKCategoryTypeIdentifierSleepAnalysis", f"{day_a} {a}:00 +0100",
                           f"{day_b} {b}:00 +0100", stage, source="iPhone"))
    morning = "2026-11-29 07:30:00 +0100"
    body += [
        record("HKQuantityTypeIdentifierHeartRate", morning, value="61", unit="count/min"),  # not imported
        record("HKQuantityTypeIdentifierRestingHeartRate", morning, value="52", unit="count/min"),
        record("HKQuantityTypeIdentifierHeartRateVariabilitySDNN", morning, value="48.3", unit="ms"),
        record("HKQuantityTypeIdentifierBodyMass", morning, value="165", unit="lb", source="Scale"),
        record("HKQuantityTypeIdentifierBodyMass", morning, value="0", unit="kg", source="Broken scale"),  # skipped
        record("HKQuantityTypeIdentifierDietaryWater", morning, value="330", unit="mL"),
        record("HKQuantityTypeIdentifierDietaryEnergyConsumed", morning, value="512", unit="Cal"),
        record("HKQuantityTypeIdentifierStepCount", morning, "2026-11-29 07:40:00 +0100", "800", "count"),
    ]
    return PROLOG + b"".join(body) + EPILOGUE


def big_export_chunks(target_bytes: int, seed_day: str = "2020-01-01") -> Iterator[bytes]:
    """A synthetic export of about ``target_bytes``: mostly heart-rate and step samples (as real ones are), one
    wanted record in twenty, written in ~1 MB pieces."""
    yield PROLOG
    written = len(PROLOG)
    i = 0
    kinds = [("HKQuantityTypeIdentifierRestingHeartRate", "count/min", lambda n: str(48 + n % 15)),
             ("HKQuantityTypeIdentifierHeartRateVariabilitySDNN", "ms", lambda n: str(30 + n % 50)),
             ("HKQuantityTypeIdentifierBodyMass", "kg", lambda n: f"{70 + (n % 40) / 10:.1f}"),
             ("HKQuantityTypeIdentifierDietaryWater", "mL", lambda n: str(150 + n % 400))]
    while written < target_bytes:
        piece = []
        for _ in range(4000):
            minutes = i
            day, minute = divmod(minutes, 1440)
            stamp = f"{2015 + day // 360:04d}-{1 + (day // 30) % 12:02d}-{1 + day % 30:02d} " \
                    f"{minute // 60:02d}:{minute % 60:02d}:00 +0000"
            if i % 20 == 0:
                kind, unit, value = kinds[(i // 20) % len(kinds)]
                piece.append(record(kind, stamp, value=value(i), unit=unit))
            elif i % 2:
                piece.append(record("HKQuantityTypeIdentifierHeartRate", stamp, value=str(60 + i % 90),
                                    unit="count/min"))
            else:
                piece.append(record("HKQuantityTypeIdentifierStepCount", stamp, stamp, str(i % 200), "count",
                                    source="iPhone"))
            i += 1
        chunk = b"".join(piece)
        written += len(chunk)
        yield chunk
    yield EPILOGUE
