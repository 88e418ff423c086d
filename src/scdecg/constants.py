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

# Files passed between scripts (relative to the working directory).
COVARIATE_DF = "covariate_df.feather"
TEN_SEC_DIR = "10_sec_ecgs"
BEATS_DIR = "ecg_beats"
MORPH_BEATS_DIR = "ecg_beats_morphing"
DEFAULT_DATA_ROOT = "arrest-ntuh-ecg/v1"
MODEL_DIRS: dict[str, str] = {"ecg": "modelfits_ecg", "beat": "modelfits_beat"}
PREDICTIONS_DIR = "predictions"
#: Default model names of the 10-s SCD model and the beat model.
DEFAULT_MODEL_NAMES: dict[str, str] = {"ecg": "ntuh_scd_model_demo", "beat": "ntuh_scd_beat_model_demo"}

#: The script of each pipeline step, so that a step whose input is missing names the step to run.
STEP_SCRIPTS: dict[str, str] = {
    "x00": "00_Data_Preprocessing/x00_make_synthetic_ntuh.py",
    "x01": "00_Data_Preprocessing/x01_build_ntuh_df.py",
    "x02": "00_Data_Preprocessing/x02_generate_dummy_columns.py",
    "x03": "00_Data_Preprocessing/x03_process_10sec_ecg.py",
    "x04": "00_Data_Preprocessing/x04_segment_beats.py",
    "x05": "00_Data_Preprocessing/x05_create_morphing_beats.py",
    "x06": "00_Data_Preprocessing/x06_create_aVL_feature.py",
    "x07": "00_Data_Preprocessing/x07_run_ntuh_style_regression.py",
    "train_ecg": "01_Predictive_Model/x01_train_10s_ecg.py",
    "train_beat": "01_Predictive_Model/x02_train_beats.py",
    "predict": "01_Predictive_Model/x03_predict.py",
}
