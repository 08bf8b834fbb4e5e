"""Tests for domain.algorithms.parsing.fitfast: parity with the fitdecode-based parser, integrity, fuzz."""

from __future__ import annotations

import contextlib
import random
import struct

import numpy as np
import pytest
from fitdecode import types as fit_types
from fitdecode import utils as fit_utils

from domain.algorithms.parsing import fit as fit_mod
from domain.algorithms.parsing import fitfast
from domain.algorithms.parsing.fit import parse_fit, parse_fit_fitdecode
from domain.algorithms.track import COLUMNS, ParseError, Track
from tests.support.corpus import corpus_file, manifest_rows

FIT_ROWS = manifest_rows("fit")


def _outcome(func: object, data: bytes) -> Track | str:
    try:
        return func(data)  # type: ignore[operator]
    except ParseError as exc:
        return str(exc)


def assert_same(ours: Track | str, ref: Track | str) -> None:
    """Same error message, or the same track (columns within 1e-9 or both NaN, metadata equal)."""
    if isinstance(ours, str) or isinstance(ref, str):
        assert ours == ref
        return
    assert len(ours) == len(ref)
    for c in COLUMNS:
        np.testing.assert_allclose(getattr(ours, c), getattr(ref, c), rtol=0, atol=1e-9, equal_nan=True,
                                   err_msg=c)
    assert (ours.laps, ours.sport, ours.device, ours.totals) == (ref.laps, ref.sport, ref.device, ref.totals)


def fast_or_unsupported(data: bytes) -> Track | str | None:
    """The fast decoder's own outcome; None when it hands the file to fitdecode."""
    try:
        return _outcome(fitfast.parse, data)
    except fitfast.Unsupported:
        return None


# --------------------------------------------------------------------------- a small FIT writer


def crc(data: bytes) -> int:
    return fit_utils.compute_crc(data) if data else 0


def fit_file(*messages: bytes, header_size: int = 14, header_crc: bool = True, body_delta: int = 0) -> bytes:
    body = b"".join(messages)
    header = struct.pack("<BBHI4s", header_size, 0x20, 2195, len(body) + body_delta, b".FIT")
    if header_size == 14:
        header += struct.pack("<H", crc(header) if header_crc else 0)
    data = header + body
    return data + struct.pack("<H", crc(data))


def define(local: int, global_num: int, fields: list[tuple[int, int, int]], *, big: bool = False,
           dev: list[tuple[int, int, int]] | None = None) -> bytes:
    header = 0x40 | local | (0x20 if dev else 0)
    out = bytes([header, 0, int(big)]) + struct.pack(">HB" if big else "<HB", global_num, len(fields))
    out += b"".join(bytes(f) for f in fields)
    if dev:
        out += bytes([len(dev)]) + b"".join(bytes(f) for f in dev)
    return out


def msg(local: int, fmt: str, *values: object, big: bool = False, time_offset: int | None = None) -> bytes:
    header = local if time_offset is None else 0x80 | (local << 5) | time_offset
    return bytes([header]) + struct.pack((">" if big else "<") + fmt, *values)


T0 = 1_000_000_000  # FIT seconds (2021-09-09)
RECORD_FIELDS = [(253, 4, 0x86), (0, 4, 0x85), (1, 4, 0x85), (2, 2, 0x84), (3, 1, 0x02), (4, 1, 0x02),
                 (7, 2, 0x84), (13, 1, 0x01)]
RECORD_FMT = "IiiHBBHb"


def record(i: int, local: int = 0, big: bool = False, **override: int) -> bytes:
    values = {"t": T0 + i, "lat": 560_000_000 + 1000 * i, "lon": 100_000_000 - 500 * i, "alt": 2600 + i,
              "hr": 120 + i % 30, "cad": 80 + i % 9, "power": 200 + i, "temp": 21}
    values.update(override)
    return msg(local, RECORD_FMT, *values.values(), big=big)


FILE_ID = define(2, 0, [(1, 2, 0x84), (2, 2, 0x84)]) + msg(2, "HH", 1, 2697)
LAP = define(3, 19, [(253, 4, 0x86), (2, 4, 0x86)])
SESSION = define(4, 18, [(5, 1, 0x00), (6, 1, 0x00), (9, 4, 0x86), (8, 4, 0x86), (11, 2, 0x84)])


def activity(n: int = 40, big: bool = False) -> bytes:
    records = [record(i, big=big) for i in range(n)]
    return fit_file(FILE_ID, define(0, 20, RECORD_FIELDS, big=big), *records[: n // 2],
                    LAP + msg(3, "II", T0 + n, T0), LAP + msg(3, "II", T0 + n, T0 + n // 2),
                    *records[n // 2:], SESSION + msg(4, "BBIIH", 1, 0, 123_456, 3_600_500, 700))


def compressed_activity(invalid_event_ts: bool = False) -> bytes:
    event = define(5, 21, [(253, 4, 0x86), (0, 1, 0x00)])
    ts_event = 0xFFFFFFFF if invalid_event_ts else T0 + 100
    compressed_def = define(1, 20, [(0, 4, 0x85), (1, 4, 0x85), (3, 1, 0x02)])
    messages = [FILE_ID, define(0, 20, RECORD_FIELDS), record(0), compressed_def]
    t = T0
    for k in range(70):  # steps of 3 s: the 5-bit offset rolls over several times
        t += 3
        messages.append(msg(1, "iiB", 560_000_000 + k, 100_000_000, 130, time_offset=t & 0x1F))
        if k == 40:
            messages.append(event + msg(5, "IB", ts_event, 0))
            t = T0 + 100 if not invalid_event_ts else t
    return fit_file(*messages, SESSION + msg(4, "BBIIH", 2, 0xFF, 0xFFFFFFFF, 1000, 0xFFFF))


def dev_activity(dev_name: bytes = b"Power", base: int = 0x84, described: bool = True) -> bytes:
    dev_id = define(6, 207, [(3, 1, 0x02), (1, 16, 0x0D)]) + msg(6, "B16s", 0, b"\x01" * 16)
    desc = define(7, 206, [(0, 1, 0x02), (1, 1, 0x02), (2, 1, 0x02), (3, 16, 0x07)])
    desc += msg(7, "BBB16s", 0, 5, base, dev_name)
    rec = define(0, 20, RECORD_FIELDS, dev=[(5 if described else 6, 2, 0)])
    records = [record(i) + struct.pack("<H", 300 + i) for i in range(20)]
    return fit_file(FILE_ID, dev_id, desc, rec, *records)


def with_fields(fields: list[tuple[int, int, int]], fmt: str, rows: list[tuple[object, ...]]) -> bytes:
    return fit_file(FILE_ID, define(0, 20, fields), *(msg(0, fmt, *r) for r in rows))


BASIC = activity()
SYNTHETIC: dict[str, tuple[bytes, bool]] = {
    # name: (file, decoded by the fast path itself)
    "basic": (BASIC, True),
    "big_endian": (activity(big=True), True),
    "header_12": (fit_file(*[record(i) for i in range(3)], header_size=12), False),  # no definition
    "header_12_ok": (fit_file(define(0, 20, RECORD_FIELDS), record(0), record(1), header_size=12), True),
    "header_crc_zero": (fit_file(define(0, 20, RECORD_FIELDS), record(0), header_crc=False), True),
    "compressed_timestamps": (compressed_activity(), True),
    "compressed_after_invalid_timestamp": (compressed_activity(invalid_event_ts=True), False),
    "chained": (BASIC + activity(10, big=True), True),
    "chained_trailing_garbage": (BASIC + b"\x0e\x10\x00", True),
    "chained_second_truncated": (BASIC + activity(10)[:-30], True),
    "bad_header_crc": (BASIC[:12] + b"\x01\x02" + BASIC[14:], True),
    "bad_file_crc": (BASIC[:-1] + bytes([BASIC[-1] ^ 1]), True),
    "truncated_record": (BASIC[:300], True),
    "truncated_definition": (BASIC[: 14 + len(FILE_ID) + 7], True),
    "truncated_header_extension": (BASIC[:13], True),
    "record_past_declared_size": (fit_file(define(0, 20, RECORD_FIELDS), record(0), body_delta=-3), False),
    "undefined_local_message": (fit_file(define(0, 20, RECORD_FIELDS), record(0), record(0, local=9)), False),
    "invalid_values": (with_fields(RECORD_FIELDS, RECORD_FMT, [
        (T0, 0x7FFFFFFF, 0x7FFFFFFF, 0xFFFF, 0xFF, 0xFF, 0xFFFF, 0x7F), (T0 + 1, 1, 2, 3, 4, 5, 6, -7)]), True),
    "relative_timestamps": (with_fields(RECORD_FIELDS, RECORD_FMT, [
        (1000, 1, 2, 3, 4, 5, 6, 7), (0xFFFFFFFF, 1, 2, 3, 4, 5, 6, 7)]), True),
    "enhanced_altitude_after_altitude": (with_fields(
        [(253, 4, 0x86), (2, 2, 0x84), (78, 4, 0x86)], "IHI",
        [(T0, 3000, 0xFFFFFFFF), (T0 + 1, 3000, 3100), (T0 + 2, 0xFFFF, 3200)]), True),
    "altitude_after_enhanced_altitude": (with_fields(
        [(253, 4, 0x86), (78, 4, 0x86), (2, 2, 0x84)], "IIH",
        [(T0, 3100, 3000), (T0 + 1, 3100, 0xFFFF), (T0 + 2, 0xFFFFFFFF, 0xFFFF)]), True),
    "altitude_as_uint32": (with_fields([(253, 4, 0x86), (2, 4, 0x86)], "II",
                                       [(T0, 0x12345), (T0 + 1, 2600)]), True),
    "altitude_as_bytes": (with_fields([(253, 4, 0x86), (2, 2, 0x0D)], "IH", [(T0, 2600)]), False),
    "odd_base_types": (with_fields(
        [(253, 4, 0x86), (3, 4, 0x88), (4, 2, 0x0D), (7, 4, 0x84), (13, 3, 0x07), (0, 8, 0x89), (1, 4, 0x8C)],
        "If2s2H3sdI", [(T0, 150.5, b"\x01\x02", 5, 6, b"ab\0", 51.5, 0), (T0 + 1, float("nan"), b"\xff\xff",
                                                                              0xFFFF, 7, b"\0\0\0", 1e300, 9)]),
        True),
    "uint8z_and_sint64": (with_fields([(253, 8, 0x8E), (3, 1, 0x0A), (7, 8, 0x8F)], "qBQ",
                                      [(T0, 0, 2**64 - 1), (T0 + 1, 77, 2**63 + 5)]), True),
    "duplicate_fields_last_wins": (with_fields([(253, 4, 0x86), (3, 1, 0x02), (3, 1, 0x02)], "IBB",
                                               [(T0, 100, 0xFF), (T0 + 1, 100, 101)]), True),
    "fractional_cadence_running": (fit_file(
        define(1, 12, [(0, 1, 0x00), (1, 1, 0x00)]), msg(1, "BB", 1, 1),
        define(0, 20, [(253, 4, 0x86), (4, 1, 0x02), (53, 1, 0x02)]),
        *(msg(0, "IBB", T0 + i, 85 + i % 3, 64 * (i % 2)) for i in range(10))), True),
    "strength_sub_sport": (fit_file(define(1, 12, [(0, 1, 0x00), (1, 1, 0x00)]), msg(1, "BB", 10, 20),
                                    define(0, 20, RECORD_FIELDS), record(0)), True),
    "favero_and_product_name": (fit_file(
        define(2, 0, [(1, 2, 0x84), (2, 2, 0x84)]), msg(2, "HH", 263, 10),
        define(5, 0, [(8, 8, 0x07)]), msg(5, "8s", b"My Bike\0"),
        define(0, 20, RECORD_FIELDS), record(0)), True),
    "unknown_manufacturer_first_file_id_empty": (fit_file(
        define(2, 0, [(1, 2, 0x84)]), msg(2, "H", 0xFFFF), define(5, 0, [(1, 2, 0x84), (2, 2, 0x84)]),
        msg(5, "HH", 9999, 12), define(0, 20, RECORD_FIELDS), record(0)), True),
    "no_records": (fit_file(FILE_ID), True),
    "empty_body": (fit_file(), True),
    "developer_fields": (dev_activity(), True),
    "developer_field_shadows_power": (dev_activity(b"power"), False),
    "developer_field_undescribed": (dev_activity(described=False), False),
    "developer_field_odd_size": (dev_activity(base=0x86), False),
    # Read as bytes by both decoders (COROS writes such fields): the heart rate is not a number, so it is missing.
    "invalid_field_size": (with_fields([(253, 4, 0x86), (3, 3, 0x84)], "I3s", [(T0, b"abc")]), True),
    "zero_size_field": (with_fields([(253, 4, 0x86), (3, 0, 0x02)], "I", [(T0,)]), False),
    "array_timestamp": (with_fields([(253, 8, 0x86)], "II", [(T0, T0)]), False),
    "float_timestamp": (with_fields([(253, 4, 0x88)], "f", [(1e9,)]), False),
    "hr_message_event_timestamp_12": (fit_file(
        define(1, 132, [(10, 12, 0x0D)]), msg(1, "12s", b"\x01" * 12), define(0, 20, RECORD_FIELDS),
        record(0)), False),
}


@pytest.mark.parametrize("name", list(SYNTHETIC))
def test_synthetic_files_match_fitdecode(name: str) -> None:
    data, fast_path = SYNTHETIC[name]
    ref = _outcome(parse_fit_fitdecode, data)
    assert_same(_outcome(parse_fit, data), ref)
    native = fast_or_unsupported(data)
    assert (native is not None) == fast_path, name
    if native is not None:
        assert_same(native, ref)


def test_synthetic_values() -> None:
    basic = parse_fit(BASIC)
    assert len(basic) == 40 and basic.sport == "running" and basic.device == "Garmin Fenix5"
    assert basic.time[0] == T0 + fitfast.FIT_EPOCH_OFFSET
    assert basic.lat[1] == pytest.approx(560_001_000 * 180 / 2**31)
    assert basic.ele[0] == pytest.approx(2600 / 5 - 500)
    assert basic.laps == [T0 + fitfast.FIT_EPOCH_OFFSET, T0 + 20 + fitfast.FIT_EPOCH_OFFSET]
    assert basic.totals == {"distance_m": 1234.56, "duration_s": 3600.5, "energy_kcal": 700.0}
    assert basic.cadence[0] == 160  # running: per-foot cadence doubled

    compressed = parse_fit(SYNTHETIC["compressed_timestamps"][0])
    steps = np.diff(compressed.time)
    assert len(compressed) == 71 and not np.isnan(compressed.time).any()
    assert set(steps[:41].tolist()) == {3.0}  # 3 s apart across several 32 s roll-overs
    assert compressed.time[42] == T0 + 100 + 3 + fitfast.FIT_EPOCH_OFFSET  # re-based on the event's timestamp

    chained = parse_fit(SYNTHETIC["chained"][0])
    assert len(chained) == 50 and len(chained.laps) == 3  # T0 and T0+20, then T0+5; T0 again is the same lap
    assert chained.totals == {"distance_m": 2469.12, "duration_s": 7201.0, "energy_kcal": 1400.0}  # summed

    with pytest.raises(ParseError, match="its checksum does not match"):
        parse_fit(SYNTHETIC["bad_header_crc"][0])
    with pytest.raises(ParseError, match="probably truncated"):
        parse_fit(SYNTHETIC["truncated_record"][0])
    with pytest.raises(ParseError, match="header is invalid"):
        parse_fit(SYNTHETIC["chained_trailing_garbage"][0])


def test_point_cap_comes_before_later_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (fitfast, fit_mod):
        monkeypatch.setattr(module, "MAX_POINTS", 10)
    for data in (BASIC, SYNTHETIC["bad_file_crc"][0], BASIC[:600]):
        fast = _outcome(fitfast.parse, data)
        assert isinstance(fast, str) and "more than" in fast
        assert fast == _outcome(parse_fit_fitdecode, data)


def test_lap_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (fitfast, fit_mod):
        monkeypatch.setattr(module, "MAX_LAPS", 1)
    assert_same(parse_fit(BASIC), parse_fit_fitdecode(BASIC))
    assert len(parse_fit(BASIC).laps) == 1


# --------------------------------------------------------------------------- building blocks


@pytest.mark.parametrize("size", [0, 1, 7, 2047, 2048, 2049, 4097, 65_537, 100_001])
def test_crc16_matches_fitdecode(size: int) -> None:
    data = random.Random(size).randbytes(size + 3)
    assert fitfast.crc16(data, 3) == (fit_utils.compute_crc(data, start=3) if size else 0)
    assert fitfast.crc16(data, 0, size) == (fit_utils.compute_crc(data, end=size) if size else 0)


def test_invalid_values_follow_fitdecode_base_types() -> None:
    for ident, (code, invalid) in fitfast._NUMERIC.items():
        base = fit_types.BASE_TYPES[ident]
        assert np.dtype(code).itemsize == base.size
        if invalid is None:
            assert base.parse(float("nan")) is None
        else:
            assert base.parse(invalid) is None and base.parse(invalid ^ 1) is not None
    numeric = {k for k, b in fit_types.BASE_TYPES.items() if b.name not in ("string", "byte")}
    assert set(fitfast._NUMERIC) == numeric


# --------------------------------------------------------------------------- corpus


@pytest.mark.parametrize("row", FIT_ROWS, ids=[r["file"].split("/")[-1] for r in FIT_ROWS])
def test_corpus_matches_fitdecode(row: dict[str, str]) -> None:
    data = corpus_file(row["file"]).read_bytes()
    ref = _outcome(parse_fit_fitdecode, data)
    native = fast_or_unsupported(data)
    assert native is not None, "corpus files must be decoded by the fast path"
    assert_same(native, ref)
    if row["expected"] == "corrupt":
        assert isinstance(native, str) and native.startswith("The FIT file is damaged:")
    else:
        assert isinstance(native, Track) and len(native) > 100


def _fix_crcs(data: bytearray) -> bytes:
    """Recompute the header and file CRCs so that a mutation reaches the decoding logic."""
    header_size = data[0]
    if len(data) >= 14 and header_size >= 14:
        data[12:14] = struct.pack("<H", crc(bytes(data[:12])))
    end = header_size + struct.unpack_from("<I", data, 4)[0]
    if end + 2 <= len(data):
        data[end:end + 2] = struct.pack("<H", crc(bytes(data[:end])))
    return bytes(data)


def _mutations(data: bytes, rng: random.Random, count: int, truncate_only: bool = False) -> list[bytes]:
    out = []
    for _ in range(count):
        mutated = bytearray(data)
        choice = rng.random()
        if choice < 0.3 or truncate_only:
            out.append(data[: rng.randrange(len(data))])
            continue
        if choice < 0.45:
            start = rng.randrange(14, len(mutated))
            del mutated[start:start + rng.randrange(1, 8)]
        else:
            for _ in range(rng.randrange(1, 6)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        out.append(_fix_crcs(mutated) if rng.random() < 0.8 else bytes(mutated))
    return out


def _fuzz_cases() -> list[tuple[str, bytes]]:
    rng = random.Random(20_240)
    seeds = [(name, data) for name, (data, _) in SYNTHETIC.items()]
    seeds += [(r["file"].split("/")[-1], corpus_file(r["file"]).read_bytes()) for r in FIT_ROWS]
    cases = []
    for name, data in seeds:
        if len(data) > 20:
            # fitdecode is the slow side of the comparison (and the fallback for mangled definitions):
            # large files get truncations only, which the fast path rejects by itself.
            small = len(data) < 50_000
            mutations = _mutations(data, rng, 12 if small else 4, truncate_only=not small)
            cases += [(f"{name}-{i}", m) for i, m in enumerate(mutations)]
    return cases


FUZZ = _fuzz_cases()


@pytest.mark.parametrize(("name", "data"), FUZZ, ids=[n for n, _ in FUZZ])
def test_fuzz_only_parse_errors_and_same_outcome(name: str, data: bytes) -> None:
    with contextlib.suppress(ParseError, fitfast.Unsupported):
        fitfast.parse(data)
    ours = _outcome(parse_fit, data)  # only ParseError may escape
    if len(data) < 50_000:
        assert_same(ours, _outcome(parse_fit_fitdecode, data))
