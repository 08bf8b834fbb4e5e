"""The in-memory track every parser produces and every algorithm consumes.

Columnar numpy arrays (one value per recorded point) rather than a list of point objects: the metrics,
privacy and matching code are vectorised, and a 100 MB GPX must not become millions of Python objects.
A missing value is NaN in every column, so "heart rate only on some points" needs no special case.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from domain.algorithms.geo import known_positions

#: Columns a Track carries, in storage order. ``time`` is seconds since the Unix epoch (UTC, float64).
COLUMNS: tuple[str, ...] = ("time", "lat", "lon", "ele", "hr", "cadence", "power", "temp")


class ParseError(ValueError):
    """A permanent, user-facing problem with an uploaded file.

    The message is shown to the athlete as the upload's ``error``, so it must be a sentence a person
    understands ("The file is not valid GPX: …"), never a traceback.
    """


@dataclass
class Track:
    time: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    ele: np.ndarray
    hr: np.ndarray
    cadence: np.ndarray
    power: np.ndarray
    temp: np.ndarray
    #: Lap start times (epoch seconds) reported by the device, if any.
    laps: list[float] = field(default_factory=list)
    #: Sport as named by the file (normalised to our sport types where recognisable), or None.
    sport: str | None = None
    #: Activity name from the file, if any.
    name: str | None = None
    #: Recording device / creator, if the file says.
    device: str | None = None
    #: Totals the file itself reports (not computed from the points): "distance_m", "duration_s",
    #: "energy_kcal" where known. Kept separate because they can differ from what the points imply.
    totals: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.time.shape[0])

    @classmethod
    def empty(cls, n: int = 0) -> Track:
        return cls.from_columns(time=np.full(n, np.nan))

    @classmethod
    def from_columns(cls, **columns: object) -> Track:
        """Build a track from equal-length sequences; absent columns become all-NaN."""
        n = None
        arrays: dict[str, np.ndarray] = {}
        for c in COLUMNS:
            if c in columns and columns[c] is not None:
                arrays[c] = np.asarray(columns[c], dtype=np.float64)
                if n is None:
                    n = arrays[c].shape[0]
                elif arrays[c].shape[0] != n:
                    raise ValueError(f"column {c} has {arrays[c].shape[0]} values, expected {n}")
        n = n or 0
        for c in COLUMNS:
            arrays.setdefault(c, np.full(n, np.nan))
        extra = {k: v for k, v in columns.items() if k not in COLUMNS}
        return cls(**arrays, **extra)  # type: ignore[arg-type]  # mypy cannot tell which keys a dict holds

    @property
    def has_gps(self) -> bool:
        return int(np.count_nonzero(known_positions(self.lat, self.lon))) > 0

    def has(self, column: str) -> bool:
        return int(np.count_nonzero(~np.isnan(getattr(self, column)))) > 0

    def take(self, index: np.ndarray) -> Track:
        """A new track with only the given points (boolean mask or integer index), metadata kept."""
        return Track(
            **{c: getattr(self, c)[index] for c in COLUMNS},
            laps=list(self.laps), sport=self.sport, name=self.name, device=self.device,
            totals=dict(self.totals),
        )
