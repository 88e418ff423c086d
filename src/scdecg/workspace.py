"""The workspace contract: every file a pipeline step writes or reads, and the steps in order.

A numbered script reads and writes files relative to the current folder (the workspace);
those files are the interfaces between the steps. Their names, the rules that name files
per record (``<studyId>.npy``, ``<studyId>/<studyId>_<k>.npy``, ``predictions/<model>_1/``),
the readers of shared files (:func:`read_split`) and the one list of pipeline steps
(:data:`PIPELINE`) live here, and nowhere else.

This module imports only the standard library (pandas inside the readers that need it), so
that every script, the report and the tests can name files without loading anything heavy.

>>> beat_file_name("e12", 3)
'e12_3.npy'
>>> parse_beat_file("e12_3.npy")
('e12', 3)
>>> predictions_folder("ntuh_scd_model_demo").as_posix()
'predictions/ntuh_scd_model_demo_1'
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

# --------------------------------------------------------------------------------------
# The NTUH release (read by x01, written by x00's synthetic stand-in), relative to its root
# --------------------------------------------------------------------------------------
DEFAULT_DATA_ROOT = "arrest-ntuh-ecg/v1"
STUDY_DIR = "study-group"
CONTROL_DIR = "control-group"
CONTROL_COHORT = f"{CONTROL_DIR}/ecg-cohort.csv"
WAVEFORM_INDEX = "ecg-waveforms/waveform-npy.csv"
WAVEFORM_ARRAY = "ecg-waveforms/waveform-rhythm.npy"
METADATA_DIR = "ecg-metadata"
PER_LEAD = f"{METADATA_DIR}/measurement-matrix-per-lead.csv"
GLOBAL = f"{METADATA_DIR}/measurement-matrix-global.csv"
RESTING = f"{METADATA_DIR}/resting-ecg-measurements.csv"
DIAGNOSIS = f"{METADATA_DIR}/diagnosis.csv"
#: Study-group tables (relative to ``study-group/``).
STUDY_ECGS = "ecg.csv"
STUDY_COHORT = "cohort.csv"
ROSC_OUTCOMES = "rosc-outcomes.csv"
COMORBIDITY_TABLE = "comorbidities.csv"
#: The synthetic stand-in's ground truth, beside the data root (tests and the report only).
TRUTH_FILE = "synthetic_truth.csv"
#: Written last into every tree x00 makes ("synthetic NTUH tree: N patients, seed S"): x00
#: replaces only folders that carry it, and the run report names the cohort from it.
SYNTHETIC_MARKER = ".synthetic-ntuh"
SYNTHETIC_MARKER_PREFIX = "synthetic NTUH tree: "   # then "<N> patients, seed <S>"


def truth_file(data_root: str | Path = DEFAULT_DATA_ROOT) -> Path:
    """``synthetic_truth.csv`` beside the data root (``arrest-ntuh-ecg/synthetic_truth.csv``)."""
    return Path(data_root).parent / TRUTH_FILE


# --------------------------------------------------------------------------------------
# Preprocessing (00_Data_Preprocessing x00-x08)
# --------------------------------------------------------------------------------------
COVARIATE_DF = "covariate_df.feather"            # x01 writes, x02 and x06 add columns
IMPORT_LOG = "x00_import_log.csv"
X01_EXCLUSIONS = "x01_exclusions.csv"
TEN_SEC_DIR = "10_sec_ecgs"                      # x03: <studyId>.npy, raw µV
GAIN_REPORT = "x03_gain_report.csv"
BEATS_DIR = "ecg_beats"                          # x04: <studyId>/<studyId>_<k>.npy, mV
SEGMENTATION_LOG = "segmentation_log.csv"        # inside BEATS_DIR
MORPH_BEATS_DIR = "ecg_beats_morphing"           # x05: same layout as BEATS_DIR
MEDIAN_BEAT = "median_beat.npy"                  # inside MORPH_BEATS_DIR, as are the next three
SD_BEAT = "sd_beat.npy"
BEAT_DISTANCES = "x05_beat_distances.csv"
WATERFALL = "x05_waterfall_table_results.csv"
AVL_FEATURES = "x06_avl_features.csv"
X07_RESULTS_STEM = "x07_regression_results"      # + .csv / .md (other modes: _<mode>)
X08_FIGURE = "x08_ecg.png"


def ecg_file(folder: str | Path, study_id: str) -> Path:
    """``<folder>/<studyId>.npy``: one 10-s ECG (x03's layout); an id that would leave
    ``folder`` (``/abs``, ``../x``, ...) is a :class:`~scdecg.errors.PipelineError`."""
    from .io import record_path

    return record_path(folder, study_id)


def beat_folder(root: str | Path, study_id: str) -> Path:
    """``<root>/<studyId>/``: the beats of one ECG (x04's and x05's layout); ids are checked
    as in :func:`ecg_file`."""
    from .io import record_path

    return record_path(root, study_id, "")


def beat_file_name(study_id: str, k: int) -> str:
    """The name of beat ``k`` of one ECG: ``<studyId>_<k>.npy``."""
    return f"{study_id}_{int(k)}.npy"


_BEAT_FILE = re.compile(r"(?P<study>.+)_(?P<k>\d+)\.npy")


def parse_beat_file(name: str | Path) -> tuple[str, int] | None:
    """``(studyId, k)`` of a beat file name (or path), or None when it breaks the rule."""
    m = _BEAT_FILE.fullmatch(Path(name).name)
    return (m.group("study"), int(m.group("k"))) if m else None


def beat_files(folder: str | Path, study_id: str | None = None) -> list[tuple[int, Path]]:
    """``(k, path)`` of the beat files in one ECG's folder, by beat number ``k``.

    Only names following the rule for ``study_id`` (default: the folder's name) count;
    a missing folder has none.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    study_id = folder.name if study_id is None else str(study_id)
    found = []
    for path in folder.glob("*.npy"):
        parsed = parse_beat_file(path.name)
        if parsed is not None and parsed[0] == study_id:
            found.append((parsed[1], path))
    return sorted(found)


def is_beat_folder(folder: str | Path) -> bool:
    """True when ``folder`` holds nothing but beat files of the ECG it is named after."""
    folder = Path(folder)
    return all(p.is_file() and (parse_beat_file(p.name) or ("",))[0] == folder.name
               for p in folder.iterdir())


# --------------------------------------------------------------------------------------
# Model folders (01 x01, x02; 02 s08): modelfits_*/<name>/
# --------------------------------------------------------------------------------------
MODEL_DIRS: dict[str, str] = {"ecg": "modelfits_ecg", "beat": "modelfits_beat"}
VAE_DIR = "modelfits_vae"
#: Default model names of the 10-s SCD model and the beat model.
DEFAULT_MODEL_NAMES: dict[str, str] = {"ecg": "ntuh_scd_model_demo",
                                       "beat": "ntuh_scd_beat_model_demo"}
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "best.pt"
VAE_WEIGHTS = "vae.pt"
SPLIT_FILE = "split.csv"
EXCLUDED_FILE = "excluded.csv"
CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.csv"
LEARNING_CURVE = "learning_curve.png"
SPLIT_COLUMNS = ("ptId", "split")


def model_folder(kind: str, name: str = "") -> Path:
    """``modelfits_<kind>/<name>`` (the kind's default model when ``name`` is empty)."""
    return Path(MODEL_DIRS[kind]) / (name or DEFAULT_MODEL_NAMES[kind])


def read_config(folder: str | Path) -> dict[str, Any]:
    """A model folder's ``config.json`` ({} when there is none); PipelineError naming the
    file when it is not JSON."""
    import json

    from .errors import PipelineError

    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc


def read_split(folder: str | Path, columns: Sequence[str] = SPLIT_COLUMNS):
    """A model folder's ``split.csv`` (ids as strings), checked for ``columns``.

    Raises :class:`scdecg.errors.PipelineError` naming the file when it is missing, lacks
    a column, names an unknown split or puts one patient (``ptId``) in two splits.
    """
    import pandas as pd

    from .errors import PipelineError

    path = Path(folder) / SPLIT_FILE
    if not path.is_file():
        raise PipelineError(f"{path}: file not found (the model folder is incomplete; "
                            "retrain or restore it)")
    table = pd.read_csv(path, dtype={"studyId": str, "ptId": str, "split": str})
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise PipelineError(f"{path}: missing column(s) {', '.join(missing)}")
    if "split" in table.columns:
        check_split_values(table["split"], path)
    if {"ptId", "split"} <= set(table.columns):
        parts = table.dropna(subset=["ptId"]).drop_duplicates(["ptId", "split"])
        twice = parts["ptId"].duplicated(keep=False)
        if twice.any():
            pt = parts.loc[twice, "ptId"].iloc[0]
            named = " and ".join(s for s in SPLIT_NAMES
                                 if s in set(parts.loc[parts["ptId"] == pt, "split"]))
            raise PipelineError(f"{path}: ptId {pt!r} is in two splits ({named}; "
                                f"{parts.loc[twice, 'ptId'].nunique()} patient(s)); all ECGs "
                                "of a patient share one split: retrain the model or restore "
                                "its split.csv")
    return table


# --------------------------------------------------------------------------------------
# Predictions and evaluations (01 x03-x05): predictions/<model>_1/
# --------------------------------------------------------------------------------------
PREDICTIONS_DIR = "predictions"
RUN_SUFFIX = "_1"                                 # the published folder name: <model>_1
PREDICTIONS = "predictions.feather"              # held-out parts (val, lockbox, all)
PREDICTIONS_IN_SAMPLE = "predictions_in_sample.feather"
BY_ECG_SUFFIX = "_by_ecg"                        # beat models: per-ECG mean logits
PREDICTIONS_BY_ECG = f"predictions{BY_ECG_SUFFIX}.feather"
ENSEMBLE_DIR = "scd1_ensemble_model"             # x04's folder under predictions/
COEFFICIENTS = "coefficients.csv"
METRICS_STEM = "metrics"                         # + split suffix + .csv / .md
BASELINES_STEM = "baselines"
RISK_HISTOGRAM_STEM = "risk_histogram"


def predictions_folder(model_name: str, root: str | Path = PREDICTIONS_DIR) -> Path:
    """``predictions/<model_name>_1``: where x03 writes and x04/x05 read a model's predictions."""
    return Path(root) / f"{model_name}{RUN_SUFFIX}"


def prediction_folders(root: str | Path = PREDICTIONS_DIR) -> list[Path]:
    """The model prediction folders under ``root`` (not the ensemble's), sorted."""
    root = Path(root)
    return sorted(root.glob(f"*{RUN_SUFFIX}")) if root.is_dir() else []


def model_name_of(predictions: str | Path) -> str:
    """The model a prediction folder belongs to: ``predictions/<name>_1`` -> ``<name>``."""
    return Path(predictions).name.removesuffix(RUN_SUFFIX)


def prediction_file(part: str) -> str:
    """``predictions.feather`` for held-out parts, ``predictions_in_sample.feather`` for the
    training patients (the published names)."""
    return PREDICTIONS_IN_SAMPLE if part == "train" else PREDICTIONS


#: The patient splits a model's ``split.csv`` and its predictions may name.
SPLIT_NAMES = ("train", "val", "lockbox")


def check_split_values(values, source: str | Path, column: str = "split") -> None:
    """Refuse, in one ``PipelineError`` naming ``source``, the row and the value, a split
    name that is not one of :data:`SPLIT_NAMES` (a split name becomes part of file names:
    ``x/../../escaped`` would write outside the workspace)."""
    import pandas as pd

    from .errors import PipelineError

    values = pd.Series(values).reset_index(drop=True)
    odd = ~values.astype("string").isin(SPLIT_NAMES).fillna(False).astype(bool)
    if odd.any():
        row = int(odd.idxmax())
        raise PipelineError(f"{source}: {column} {values[row]!r} in row {row} is not a split "
                            f"({', '.join(SPLIT_NAMES)}; {int(odd.sum())} row(s))")


def split_suffix(split: str) -> str:
    """File-name suffix of one split's results: validation (and files without a split
    column) keep the plain names (``metrics.csv``); others get ``_<split>``
    (``metrics_lockbox.csv``), so evaluating one split never overwrites another's."""
    if split not in ("", *SPLIT_NAMES):
        from .errors import PipelineError

        raise PipelineError(f"split {split!r} is not one of {', '.join(SPLIT_NAMES)}")
    return "" if split in ("val", "") else f"_{split}"


def split_file(folder: str | Path, stem: str, split: str, ext: str = ".csv") -> Path:
    """``<folder>/<stem><split suffix><ext>``, e.g. ``metrics_lockbox.csv``."""
    return Path(folder) / f"{stem}{split_suffix(split)}{ext}"


# --------------------------------------------------------------------------------------
# Morphing (02 s08-s12): morphing_outputs/
# --------------------------------------------------------------------------------------
MORPH_DIR = "morphing_outputs"
MORPH_TABLE = "morphs.feather"                   # s10: one row per morphed beat
STAGE_ARRAYS = {"raw": "beats_raw.npy", "t0": "beats_t0.npy", "final": "beats_final.npy"}
MORPH_RUN = "morph_run.json"
MORPH_GATE_LOG = "morph_gate_log.csv"
MORPH_INDEPENDENT = "morph_independent.csv"
TRAJECTORY_RISK_STEPS = "trajectory_risk_steps.npy"
TRAJECTORY_LOGITS = "trajectory_logits.npy"
RECONSTRUCTION_REPORT = "reconstruction_report.csv"   # s09
STATS_TABLE = "morph-stats.feather"              # s11 (run by s12)
STATS_FAILURES = "morph-stats-failures.csv"
STATS_RECORD = "morph-stats.json"
MORPH_SUMMARY = "morph-summary.csv"              # s12
MORPH_OUTPUTS = "morph-outputs.csv"
MORPH_LEAD_CHANGE = "morph-lead-change.csv"
MORPH_SUMMARY_MD = "morph-summary.md"


def took_a_step(table):
    """Rows (of ``morphs.feather`` or ``morph-stats.feather``) of beats that were morphed: the
    morph succeeded and took at least one step (a beat already at the stop level takes none)."""
    return table["status"].eq("ok") & table["steps"].gt(0)


# --------------------------------------------------------------------------------------
# The run report (python -m scdecg.report)
# --------------------------------------------------------------------------------------
REPORT_DIR = "reports"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
DEMO_TIMINGS = "demo_timings.csv"                # scdecg.demo (run.py demo), in REPORT_DIR
DEMO_LANE_LOG = "demo_lane{}.log"                # a demo lane's output (lane number), REPORT_DIR
DEMO_LANE_TIMINGS = "demo_timings_lane{}.csv"   # a lane's timings until the demo merges them
ECG_EXAMPLE = "ecg_example.png"                  # the demo's x08 figure, inside REPORT_DIR
ECG_EXAMPLE_GLOB = "ecg_example*.png"

#: Everything the report reads, as glob patterns relative to the workspace.
REPORT_INPUTS: tuple[str, ...] = (
    COVARIATE_DF, f"*/{TRUTH_FILE}", GAIN_REPORT, f"{MORPH_BEATS_DIR}/{WATERFALL}",
    f"{BEATS_DIR}/{SEGMENTATION_LOG}", f"{X07_RESULTS_STEM}.csv",
    f"{PREDICTIONS_DIR}/*{RUN_SUFFIX}/{METRICS_STEM}*.csv",
    f"{PREDICTIONS_DIR}/*{RUN_SUFFIX}/{BASELINES_STEM}*.csv",
    f"{PREDICTIONS_DIR}/*{RUN_SUFFIX}/{PREDICTIONS}",
    f"{PREDICTIONS_DIR}/*{RUN_SUFFIX}/*.png",
    *(f"{d}/*/{name}" for d in MODEL_DIRS.values()
      for name in (HISTORY_FILE, CONFIG_FILE, LEARNING_CURVE)),
    f"{PREDICTIONS_DIR}/{ENSEMBLE_DIR}/{METRICS_STEM}*.csv",
    f"{PREDICTIONS_DIR}/{ENSEMBLE_DIR}/{COEFFICIENTS}",
    f"{PREDICTIONS_DIR}/{ENSEMBLE_DIR}/{RISK_HISTOGRAM_STEM}*.png",
    f"{MORPH_DIR}/{STATS_TABLE}", f"{MORPH_DIR}/{RECONSTRUCTION_REPORT}",
    f"{MORPH_DIR}/{MORPH_SUMMARY}", f"{MORPH_DIR}/{MORPH_OUTPUTS}", f"{MORPH_DIR}/*.png",
    f"{REPORT_DIR}/{DEMO_TIMINGS}", f"{REPORT_DIR}/{ECG_EXAMPLE_GLOB}",
)


# --------------------------------------------------------------------------------------
# The pipeline: the published order, with the demo's arguments (run from the workspace)
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One run of a script: ``key`` (unique; names the step in "run ... first" hints),
    a title, the script (relative to the repository; ``-m module`` for a package module),
    its demo arguments, and the workspace files it reads and writes."""
    key: str
    title: str
    script: str
    args: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()

    def with_args(self, *args: str) -> "Step":
        """The same step with other arguments."""
        return Step(self.key, self.title, self.script, tuple(args), self.inputs, self.outputs)

    def with_option(self, name: str, *values: str) -> "Step":
        """The same step with option ``name`` set to ``values`` (see :func:`set_option`)."""
        return self.with_args(*set_option(self.args, name, *values))


def _option_span(args: Sequence[str], name: str) -> tuple[int, int] | None:
    """Where option ``name`` and its values lie in ``args`` (its index, one past its last
    value), or None."""
    if name not in args:
        return None
    start = list(args).index(name)
    end = start + 1
    while end < len(args) and not args[end].startswith("--"):
        end += 1
    return start, end


def set_option(args: Sequence[str], name: str, *values: str) -> list[str]:
    """``args`` with option ``name`` taking ``values``: replaced where it is, else appended."""
    span = _option_span(args, name)
    if span is None:
        return [*args, name, *values]
    start, end = span
    return [*args[:start + 1], *values, *args[end:]]


def drop_option(args: Sequence[str], name: str) -> list[str]:
    """``args`` without option ``name`` and its values."""
    span = _option_span(args, name)
    return list(args) if span is None else [*args[:span[0]], *args[span[1]:]]


_X = "00_Data_Preprocessing/"
_P = "01_Predictive_Model/"
_M = "02_Morphing/"
_ECG, _BEAT = DEFAULT_MODEL_NAMES["ecg"], DEFAULT_MODEL_NAMES["beat"]
_DEATH, _LOW_EF, _BEAT1 = f"{_ECG}_death_only", f"{_ECG}_low_ef", f"{_BEAT}_seed1"
_ECG_DIR, _BEAT_DIR = MODEL_DIRS["ecg"], MODEL_DIRS["beat"]


def _train(key: str, title: str, script: str, folder: str, args: Sequence[str],
           beats: str = TEN_SEC_DIR) -> Step:
    return Step(key, title, script, tuple(args), (COVARIATE_DF, beats),
                (f"{folder}/{CONFIG_FILE}", f"{folder}/{WEIGHTS_FILE}", f"{folder}/{SPLIT_FILE}"))


def _predict(key: str, title: str, name: str, args: Sequence[str], kind: str = "ecg") -> Step:
    return Step(key, title, f"{_P}x03_predict.py", tuple(args),
                (COVARIATE_DF, f"{MODEL_DIRS[kind]}/{name}/{SPLIT_FILE}"),
                (f"{predictions_folder(name).as_posix()}/{PREDICTIONS}",))


def _evaluate(key: str, title: str, name: str, args: Sequence[str]) -> Step:
    folder = predictions_folder(name).as_posix()
    return Step(key, title, f"{_P}x05_evaluate.py", tuple(args),
                (COVARIATE_DF, f"{folder}/{PREDICTIONS}"), (f"{folder}/{METRICS_STEM}.csv",))


PIPELINE: tuple[Step, ...] = (
    Step("x00", "synthetic NTUH dataset", f"{_X}x00_make_synthetic_ntuh.py",
         ("--data-root", DEFAULT_DATA_ROOT, "--n-patients", "3000", "--seed", "0"),
         (), (DEFAULT_DATA_ROOT, f"arrest-ntuh-ecg/{TRUTH_FILE}")),
    Step("x01", "cohort table and SCD labels", f"{_X}x01_build_ntuh_df.py", (),
         (DEFAULT_DATA_ROOT,), (COVARIATE_DF, X01_EXCLUSIONS)),
    Step("x02", "pipeline columns", f"{_X}x02_generate_dummy_columns.py", (),
         (COVARIATE_DF,), (COVARIATE_DF,)),
    Step("x03", "10-s ECGs and limb-lead gain correction", f"{_X}x03_process_10sec_ecg.py", (),
         (COVARIATE_DF, DEFAULT_DATA_ROOT), (TEN_SEC_DIR, GAIN_REPORT)),
    Step("x04", "beat segmentation", f"{_X}x04_segment_beats.py", (),
         (COVARIATE_DF, TEN_SEC_DIR), (BEATS_DIR, f"{BEATS_DIR}/{SEGMENTATION_LOG}")),
    Step("x05", "morphing beat set and waterfall", f"{_X}x05_create_morphing_beats.py", (),
         (COVARIATE_DF, BEATS_DIR, f"{BEATS_DIR}/{SEGMENTATION_LOG}"),
         (MORPH_BEATS_DIR, f"{MORPH_BEATS_DIR}/{WATERFALL}", f"{MORPH_BEATS_DIR}/{MEDIAN_BEAT}")),
    Step("x06", "aVL RS-slope biomarker", f"{_X}x06_create_aVL_feature.py", (),
         (COVARIATE_DF, TEN_SEC_DIR), (COVARIATE_DF, AVL_FEATURES)),
    Step("x07", "association analysis", f"{_X}x07_run_ntuh_style_regression.py", (),
         (COVARIATE_DF,), (f"{X07_RESULTS_STEM}.csv", f"{X07_RESULTS_STEM}.md")),
    Step("x08", "ECG plot", f"{_X}x08_plot_ecg.py",
         ("--output", f"{REPORT_DIR}/{ECG_EXAMPLE}"), (COVARIATE_DF, TEN_SEC_DIR),
         (f"{REPORT_DIR}/{ECG_EXAMPLE}",)),
    _train("train_ecg", "10-s risk model", f"{_P}x01_train_10s_ecg.py", f"{_ECG_DIR}/{_ECG}",
           ("--profile", "demo")),
    _train("train_death_only", "death-only model (ensemble member)", f"{_P}x01_train_10s_ecg.py",
           f"{_ECG_DIR}/{_DEATH}", ("--profile", "demo", "--run", "death-only")),
    # low_ef is the all-False placeholder here: nothing to learn, so two epochs suffice
    _train("train_low_ef", "low-EF model (ensemble member)", f"{_P}x01_train_10s_ecg.py",
           f"{_ECG_DIR}/{_LOW_EF}", ("--profile", "demo", "--run", "low-ef", "--min-epochs", "2",
                                     "--max-epochs", "2")),
    _train("train_beat", "beat model", f"{_P}x02_train_beats.py", f"{_BEAT_DIR}/{_BEAT}",
           ("--profile", "demo"), BEATS_DIR),
    # a second beat model (another seed) that never steers the morphs, only scores them
    _train("train_beat_independent", "independent beat model", f"{_P}x02_train_beats.py",
           f"{_BEAT_DIR}/{_BEAT1}", ("--profile", "demo", "--seed", "1", "--model-name", _BEAT1),
           BEATS_DIR),
    # validation, lockbox and (in-sample) training rows; x05 evaluates each into its own files
    _predict("predict", "10-s predictions", _ECG, ("--part", "all")),
    _predict("predict_death_only", "death-only predictions", _DEATH,
             ("--model-name", _DEATH, "--part", "all")),
    _predict("predict_low_ef", "low-EF predictions", _LOW_EF,
             ("--model-name", _LOW_EF, "--part", "all")),
    _predict("predict_beat", "beat predictions", _BEAT, ("--beat", "--part", "all"), "beat"),
    _evaluate("evaluate", "10-s evaluation and baselines", _ECG, ()),
    _evaluate("evaluate_beat", "beat evaluation", _BEAT, ("--beat",)),
    _evaluate("evaluate_death_only", "death-only evaluation", _DEATH,
              ("--model-name", _DEATH, "--no-baselines")),
    _evaluate("evaluate_low_ef", "low-EF evaluation", _LOW_EF,
              ("--model-name", _LOW_EF, "--no-baselines")),
    Step("ensemble", "stacking ensemble", f"{_P}x04_train_ensemble.py", (),
         (COVARIATE_DF, f"{PREDICTIONS_DIR}/*{RUN_SUFFIX}/{PREDICTIONS}"),
         (f"{PREDICTIONS_DIR}/{ENSEMBLE_DIR}/{METRICS_STEM}.csv",)),
    Step("s08", "DR-VAE generator", f"{_M}s08_train_generator.py", ("--profile", "demo"),
         (MORPH_BEATS_DIR, f"{_BEAT_DIR}/{_BEAT}"), (f"{VAE_DIR}/*/{VAE_WEIGHTS}",)),
    Step("s09", "reconstruction report", f"{_M}s09_reconstruction_report.py", (),
         (VAE_DIR, MORPH_BEATS_DIR), (f"{MORPH_DIR}/{RECONSTRUCTION_REPORT}",)),
    Step("s10", "morphing", f"{_M}s10_morph_ecgs.py",
         ("--profile", "demo", "--independent-models", f"{_BEAT_DIR}/{_BEAT1}"),
         (VAE_DIR, MORPH_BEATS_DIR, f"{_BEAT_DIR}/{_BEAT}"),
         (f"{MORPH_DIR}/{MORPH_TABLE}", f"{MORPH_DIR}/{MORPH_RUN}")),
    Step("s12", "morph measurements and summary", f"{_M}s12_morph_stats.py", (),
         (f"{MORPH_DIR}/{MORPH_TABLE}",), (f"{MORPH_DIR}/{STATS_TABLE}",
                                           f"{MORPH_DIR}/{MORPH_SUMMARY}")),
    Step("report", "run report", "-m scdecg.report", (), REPORT_INPUTS,
         (f"{REPORT_DIR}/{REPORT_MD}", f"{REPORT_DIR}/{REPORT_HTML}")),
)

#: The demo's two lanes: after the steps that precede every lane step in :data:`PIPELINE`,
#: these run side by side in two processes, each lane's steps in order; the remaining steps
#: (the stacking ensemble, morphing, its measurements, the report) run after both. A lane
#: reads only what the steps before the lanes and its own earlier steps wrote
#: (:func:`scdecg.demo.demo_schedule` checks the declared inputs and outputs). The lanes are
#: balanced by their steps' wall times on a 2-core machine (docs/PERFORMANCE.md).
DEMO_LANES: tuple[tuple[str, ...], ...] = (
    ("train_beat", "predict_beat", "evaluate_beat", "s08", "s09"),
    ("train_ecg", "train_death_only", "train_low_ef", "train_beat_independent", "predict",
     "predict_death_only", "predict_low_ef", "evaluate", "evaluate_death_only",
     "evaluate_low_ef"),
)

#: The own-data import's step key (``x00_import_cohort.py``, which marks ``10_sec_ecgs/``
#: like x03 does: :data:`scdecg.io.MARKED_STEPS`).
IMPORT_STEP = "x00_import"
#: Steps that are not part of the demo but are named in "run ... first" hints.
OTHER_SCRIPTS: dict[str, str] = {IMPORT_STEP: f"{_X}x00_import_cohort.py",
                                 "s11": f"{_M}s11_prepare_morph_stats.py"}
#: The script of each step key, so that a missing input names the step to run.
STEP_SCRIPTS: dict[str, str] = {**{s.key: s.script for s in PIPELINE}, **OTHER_SCRIPTS}


def step(key: str) -> Step:
    """The pipeline step ``key`` (KeyError naming the known keys)."""
    for s in PIPELINE:
        if s.key == key:
            return s
    raise KeyError(f"unknown pipeline step {key!r}; known: {[s.key for s in PIPELINE]}")


def steps_through(key: str, steps: Iterable[Step] = PIPELINE) -> list[Step]:
    """The steps from the first up to and including ``key``."""
    steps = list(steps)
    keys = [s.key for s in steps]
    if key not in keys:
        raise KeyError(f"unknown pipeline step {key!r}; known: {keys}")
    return steps[: keys.index(key) + 1]


#: Files that mark a folder as another step's (or the workspace root): a morphing output
#: folder must be none of them, or its arrays and tables would land among their files.
INPUT_FOLDER_MARKERS = {COVARIATE_DF: "the workspace root (x01-x06's table)",
                        CONFIG_FILE: "a model or VAE folder",
                        SEGMENTATION_LOG: "x04's beat folder",
                        WATERFALL: "x05's morphing-beat folder",
                        PREDICTIONS: "a predictions folder (x03)",
                        GAIN_REPORT: "the workspace root (x03's report)"}


def check_morph_output_dir(path: str | Path, option: str = "--output-dir") -> None:
    """Refuse an output folder of s09-s12 that is another step's folder (one of
    :data:`INPUT_FOLDER_MARKERS` in it, or the 10-s ECG folder), before anything is written."""
    from .errors import PipelineError

    path = Path(path)
    if not path.is_dir():
        return
    for marker, what in INPUT_FOLDER_MARKERS.items():
        if (path / marker).exists():
            raise PipelineError(f"{option} {path}: {what} (it holds {marker}); give the "
                                "morphing outputs a folder of their own (default "
                                f"{MORPH_DIR})")
    if path.resolve() == Path(TEN_SEC_DIR).resolve():
        raise PipelineError(f"{option} {path}: x03's folder of 10-s ECGs; give the morphing "
                            f"outputs a folder of their own (default {MORPH_DIR})")
