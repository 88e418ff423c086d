"""Conventions shared by every stage of the pipeline."""

LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF",
                          "V1", "V2", "V3", "V4", "V5", "V6")
LEAD_INDEX: dict[str, int] = {name: i for i, name in enumerate(LEADS)}
AVL = LEAD_INDEX["aVL"]  # 4: the biomarker lead

#: Leads the NTUH export stores at the wrong gain (computed, not recorded, by the cart).
DERIVED_LIMB_LEADS: tuple[str, ...] = ("III", "aVR", "aVL", "aVF")
#: Factor by which the derived limb leads are inflated in NTUH (the MUSE 4.88 µV/LSB).
NTUH_GAIN_FAULT = 4.88

FS = 500                 # Hz
N_SAMPLES = 5000         # 10 s at 500 Hz
N_LEADS = 12
SCALING_FACTOR = 1000.0  # raw µV -> mV

#: Beat window around each R-peak: [r - BEAT_PRE, r + BEAT_POST).
BEAT_PRE = 100
BEAT_POST = 200
BEAT_LEN = BEAT_PRE + BEAT_POST

#: SCD horizons of the cumulative-probability head, shortest first.
SCD_HORIZONS: tuple[str, ...] = ("scd3mo", "scd6mo", "scd1", "scd2")
SCD_HORIZON_DAYS: dict[str, int] = {"scd3mo": 91, "scd6mo": 182, "scd1": 365, "scd2": 730}
MIN_DAYS_TO_EVENT = 2

CONTROL_YEARS: tuple[int, ...] = (2015, 2016, 2017, 2018, 2019)
