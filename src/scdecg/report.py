"""The run report: one Markdown page (plus figures) summarising a pipeline workspace.

Run from a workspace after the pipeline: ``python -m scdecg.report``. Every section reads the
files the pipeline steps wrote; a missing file becomes a line saying which step makes it.
On the synthetic default (``arrest-ntuh-ecg/synthetic_truth.csv`` beside the data root), the
report also checks at each stage whether the planted aVL biomarker was recovered.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from . import constants as C
from . import workspace as W
from .baselines import PROBE
from .errors import PipelineError, os_error_line, script_main
from .evaluation import split_label
from .io import check_finished, check_values, read_feather, require_columns, write_text
from .metrics import difference_verdict, roc_auc
from .morph_stats import QRS_WINDOW_MS, SUMMARY_COLUMNS
from .report_html import markdown_to_html
from .tables import markdown_table
from .workspace import REPORT_DIR, split_suffix, took_a_step

HTML_REPORT = W.REPORT_HTML


@dataclass
class Check:
    stage: str
    criterion: str
    value: str
    passed: bool | None  # None: could not be evaluated


@dataclass
class Report:
    workspace: Path
    out_dir: Path
    lines: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # files a section could not use

    def h(self, title: str, level: int = 2) -> None:
        self.lines += ["", "#" * level + " " + title, ""]

    def p(self, text: str) -> None:
        self.lines += [text, ""]

    def table(self, df: pd.DataFrame, digits: int = 3) -> None:
        self.lines += [markdown_table(df, digits), ""]

    def figure(self, source: Path, caption: str) -> None:
        """Copy a figure into the report folder and reference it."""
        target = self.out_dir / "figures" / f"{source.parent.name}-{source.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        self.lines += [f"![{caption}](figures/{target.name})", "", f"*{caption}*", ""]

    def missing(self, path: str, step: str) -> None:
        self.p(f"_Not available: `{path}` is missing (made by {step})._")


def read_table(path: Path, columns: tuple[str, ...] = (), numeric: tuple[str, ...] = (),
               **read_csv) -> pd.DataFrame:
    """A Feather or CSV table a step wrote, with ``columns``, and numbers in the ``numeric``
    columns it has; else one :class:`PipelineError` naming the file (the section that reads it
    then says so, and the rest of the report is written)."""
    if path.suffix == ".feather":
        df = read_feather(path, columns)
    else:
        try:
            df = pd.read_csv(path, **read_csv)
        except (ValueError, UnicodeDecodeError) as exc:  # empty, torn or not text
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PipelineError(f"{path}: not a readable CSV table ({first})") from exc
        require_columns(df, columns, path)
    check_values(df, path, numeric=[c for c in numeric if c in df.columns])
    return df


def find_truth(workspace: Path, data_root: str) -> pd.DataFrame | None:
    path = workspace / W.truth_file(data_root)
    if not path.exists():
        return None
    truth = read_table(path, ("ecg_id", "slur_strength", "cardiac_cause"), ("slur_strength",),
                       dtype={"ecg_id": str, "patient_ngsci_id": str})
    return truth[["ecg_id", "slur_strength", "cardiac_cause"]]


def section_cohort(r: Report) -> pd.DataFrame | None:
    r.h("Cohort")
    path = r.workspace / W.COVARIATE_DF
    if not path.exists():
        r.missing(W.COVARIATE_DF, "x01/x02")
        return None
    labels = ("scd3mo", "scd6mo", "scd1", "scd2", "scd", "arrest_noncardiac", "any_arrest")
    df = read_table(path, ("studyId", "ptId", "group"), (*labels, "aVL_rs_diff"))
    groups = df.assign(group=df["group"].astype(str)).groupby("group").agg(
        ecgs=("studyId", "size"), patients=("ptId", "nunique"))
    r.table(groups.reset_index())
    labels = [c for c in labels if c in df]
    counts = pd.DataFrame({"label": labels,
                           "positives": [int(np.nansum(df[c].astype(float))) for c in labels]})
    r.p(f"{len(df)} ECGs of {df['ptId'].nunique()} patients; "
        f"{int(df.get('include_modelling', pd.Series(dtype=bool)).sum())} eligible for modelling.")
    r.table(counts)
    return df


def section_example_ecg(r: Report) -> None:
    pngs = sorted(r.out_dir.glob(W.ECG_EXAMPLE_GLOB))
    if pngs:
        r.h("An ECG of the cohort (x08)")
        r.lines += [f"![12-lead ECG]({pngs[0].name})", ""]


def section_timings(r: Report) -> None:
    path = r.out_dir / W.DEMO_TIMINGS
    if not path.exists():
        return
    r.h("Run time of each step")
    times = read_table(path, ("step", "seconds"), ("seconds", "lane", "started"))
    total = times["seconds"].sum()
    if {"lane", "started"} <= set(times) and times["lane"].gt(0).any():
        wall = (times["started"] + times["seconds"]).max()
        r.p(f"{wall:.0f} s of wall time for the steps before this report; lanes 1 and 2 ran "
            f"side by side (lane 0: the demo's own process), so the steps' own times add up "
            f"to more: {total:.0f} s. Started: seconds after the demo began.")
        r.table(times[["step", "lane", "started", "seconds"]], 1)
    else:
        r.p(f"Total {total:.0f} s for the steps before this report.")
        r.table(times[["step", "seconds"]], 1)


def section_gain(r: Report) -> None:
    r.h("Limb-lead gain correction (x03)")
    path = r.workspace / W.GAIN_REPORT
    if not path.exists():
        return r.missing(path.name, "x03")
    g = read_table(path, ("corrected", "residual_before", "residual_after"),
                   ("residual_before", "residual_after"))
    leads = [c for c in g if c.startswith("gain_")]
    check_values(g, path, numeric=leads)
    summary = pd.DataFrame({
        "lead": [c.removeprefix("gain_") for c in leads],
        "median gain": [g[c].median() for c in leads],
        "p5": [g[c].quantile(0.05) for c in leads],
        "p95": [g[c].quantile(0.95) for c in leads],
    })
    r.table(summary, 4)
    corrected = int(g["corrected"].astype(bool).sum())
    r.p(f"{corrected} of {len(g)} ECGs corrected; median identity residual "
        f"{g['residual_before'].median():.3g} before, {g['residual_after'].median():.3g} after "
        f"(fraction of signal RMS).")
    within = float(np.mean([abs(g[c].median() / C.NTUH_GAIN_FAULT - 1) < 0.01 for c in leads]))
    r.checks.append(Check("x03 gain", "median estimated gains within 1% of 4.88",
                          ", ".join(f"{x:.3f}" for x in summary["median gain"]), within == 1.0))


def section_waterfall(r: Report) -> None:
    r.h("Beat filtering waterfall (x05)")
    path = r.workspace / W.MORPH_BEATS_DIR / W.WATERFALL
    if not path.exists():
        return r.missing(str(path.relative_to(r.workspace)), "x05")
    r.table(read_table(path))
    log = r.workspace / W.BEATS_DIR / W.SEGMENTATION_LOG
    if log.exists():
        seg = read_table(log, ("status", "n_kept"), ("n_kept",))
        r.p("x04 segmentation status: " + ", ".join(
            f"{k}: {v}" for k, v in seg["status"].value_counts().items()) +
            f"; {int(seg['n_kept'].sum())} beats kept.")


def section_biomarker(r: Report, df: pd.DataFrame | None, truth: pd.DataFrame | None) -> None:
    r.h("aVL RS-slope biomarker (x06) and association (x07)")
    if df is None or "aVL_rs_diff" not in df:
        r.missing("aVL_rs_diff column", "x06")
    elif truth is not None:
        merged = df.merge(truth, left_on="studyId", right_on="ecg_id", how="inner")
        ok = merged.dropna(subset=["aVL_rs_diff"])
        rho, p = stats.spearmanr(ok["slur_strength"], ok["aVL_rs_diff"])
        r.p(f"Against the planted slur strength: Spearman ρ = {rho:.3f} (p = {p:.2g}, "
            f"n = {len(ok)}); {int(merged['aVL_rs_diff'].isna().sum())} ECGs without a value.")
        r.checks.append(Check("x06 biomarker", "aVL_rs_diff falls with planted slur (ρ < 0, p < 0.01)",
                              f"ρ = {rho:.3f}, p = {p:.2g}", bool(rho < 0 and p < 0.01)))
    path = r.workspace / f"{W.X07_RESULTS_STEM}.csv"
    if not path.exists():
        return r.missing(path.name, "x07")
    res = read_table(path, ("outcome", "exposure", "model", "coef", "p"), ("coef", "p"))
    shown = res[res["estimator"] == "logit"] if "estimator" in res else res
    cols = [c for c in ("outcome", "exposure", "model", "filter_mode", "coef", "se", "odds_ratio",
                        "p", "n", "n_events") if c in shown]
    r.p("Logistic regressions, exposure z-scored (log-odds per SD); linear probability models "
        f"and confidence intervals are in `{path.name}`.")
    r.table(shown[cols])
    hit = res[(res["outcome"] == "scd1") & (res["exposure"] == "aVL_rs_diff")]
    if "estimator" in hit:
        hit = hit[hit["estimator"].astype(str).str.contains("logit")]
    if len(hit):
        row = hit.iloc[-1]  # the most adjusted model is listed last
        r.checks.append(Check("x07 association", f"scd1 ~ aVL_rs_diff ({row['model']}): coef < 0, p < 0.01",
                              f"coef = {row['coef']:.3f}, p = {row['p']:.2g}",
                              bool(row["coef"] < 0 and row["p"] < 0.01)))


#: Splits shown per model, the trusted one first: the validation patients chose the epoch.
REPORT_SPLITS = ("lockbox", "val")
MODEL_AUC_TARGET = 0.75
MORPH_RISK_TARGET = 0.90      # share of morphed beats whose predicted risk rose
MORPH_AVL_TARGET = 0.75       # share whose aVL_rs_diff fell (the planted slur)
MORPH_AVL_RANK_TARGET = 3     # aVL among this many leads whose QRS changed most over amplitude
LEAD_CHANGE_COLUMNS = ("lead", "qrs_abs_change_mv", "qrs_relative_change", "rank_qrs",
                       "mean_abs_change_mv", "relative_change", "rank_relative")


METRIC_NUMBERS = ("n", "n_pos", "n_patients", "auc", "auc_lo", "auc_hi")
BASELINE_COLUMNS = ("model", "n", "n_pos", "auc", "auc_lo", "auc_hi", "note")
PAIRED_COLUMNS = ("model_auc", "difference", "difference_lo", "difference_hi")
COEFFICIENT_COLUMNS = ("fitted_on_half", "term", "coef", "se_cluster", "p", "estimable", "note")
SUMMARY_NUMBERS = tuple(c for c in SUMMARY_COLUMNS if c not in ("feature", "unit"))


def _metrics_file(folder: Path, stem: str, split: str) -> Path:
    return W.split_file(folder, stem, split)


def section_models(r: Report, labels: pd.DataFrame | None,
                   truth: pd.DataFrame | None = None) -> dict[str, dict[str, float]]:
    """Per model folder: lockbox and validation metrics (lockbox first, the figure to trust),
    the baselines on the same ECGs, figures. Returns {model: {split: scd1 AUC}}."""
    r.h("Risk models (01_Predictive_Model)")
    folders = W.prediction_folders(r.workspace / W.PREDICTIONS_DIR)
    if not folders:
        r.missing(f"{W.PREDICTIONS_DIR}/", "01_Predictive_Model/x03 and x05")
        return {}
    r.p("Each model is evaluated per split of its patients. The **lockbox** patients took no "
        "part in training or in choosing the epoch: their AUC is the figure to trust. The "
        "validation patients chose the epoch (and fit the ensemble), so their AUC is optimistic.")
    scd1 = {}
    for folder in folders:
        beat_model = (folder / W.PREDICTIONS_BY_ECG).exists()
        r.h(f"{folder.name} ({'beat model, per ECG' if beat_model else '10-s model'})", 3)
        found = {}
        for split in REPORT_SPLITS:
            path = _metrics_file(folder, W.METRICS_STEM, split)
            if path.exists():
                found[split] = read_table(path, ("output", "auc"), METRIC_NUMBERS)
        if not found:
            r.missing(str(_metrics_file(folder, W.METRICS_STEM, "val").relative_to(r.workspace)),
                      f"{Path(W.step('evaluate').script).name} --model-name "
                      f"{W.model_name_of(folder)}"
                      + (" --beat" if beat_model else ""))
            continue
        for split, m in found.items():
            trust = " (the figure to trust)" if split == "lockbox" else " (chose the epoch: optimistic)"
            r.p(f"**{split_label(split).capitalize()} patients**{trust}:")
            r.table(m[[c for c in ("output", "n", "n_pos", "auc", "auc_lo", "auc_hi") if c in m]])
            baselines = _metrics_file(folder, W.BASELINES_STEM, split)
            if baselines.exists():
                b = read_table(baselines, BASELINE_COLUMNS, METRIC_NUMBERS + PAIRED_COLUMNS)
                r.p(f"scd1 AUC beside linear baselines on the same {split_label(split)} ECGs "
                    "(fitted on the model's training patients). A baseline that scores fewer "
                    "ECGs is also compared like for like: `model_auc` is the deep model's AUC "
                    "on that baseline's ECGs, `difference` the deep model's minus the "
                    "baseline's, with its paired patient-bootstrap interval:")
                r.table(b[[c for c in (*BASELINE_COLUMNS[:-1], *PAIRED_COLUMNS, "note")
                           if c in b]])
        for split in found:  # lockbox first; in-sample (training) figures are not shown
            suffix = split_suffix(split)
            for png in sorted(folder.glob(f"*{suffix}.png")):
                stem = png.stem.removesuffix(suffix)
                if suffix == "" and any(stem.endswith("_" + s) for s in ("lockbox", "train")):
                    continue
                r.figure(png, f"{folder.name}: {stem.replace('_', ' ')}, "
                              f"{split_label(split)} patients")
        if beat_model:
            continue
        aucs = {split: dict(zip(m["output"], m["auc"])).get("scd1") for split, m in found.items()}
        aucs = {k: v for k, v in aucs.items() if v is not None}
        if not aucs:
            continue
        scd1[W.model_name_of(folder)] = aucs
        if member_run(r.workspace, W.model_name_of(folder)) in ("death-only", "low-ef"):
            continue  # ensemble members: a conditional or another outcome's model, not checked
        split = next(s for s in REPORT_SPLITS if s in aucs)
        oracle = oracle_auc_for(folder / W.PREDICTIONS, labels, truth, split)
        if oracle is not None:
            r.p(f"On these {split_label(split)} ECGs the planted slur strength itself scores "
                f"scd1 with AUC {oracle:.3f}, against the model's {aucs[split]:.3f}: how much "
                "there was to find in this draw of the synthetic cohort.")
        r.checks.append(Check(folder.name, f"{split_label(split)} AUC scd1 ≥ {MODEL_AUC_TARGET}",
                              f"{aucs[split]:.3f}" + ("" if oracle is None else
                                                      f" (the planted slur: {oracle:.3f})"),
                              bool(aucs[split] >= MODEL_AUC_TARGET)))
        baselines = _metrics_file(folder, W.BASELINES_STEM, split)
        if baselines.exists():
            b = read_table(baselines, BASELINE_COLUMNS, METRIC_NUMBERS + PAIRED_COLUMNS
                           ).set_index("model")
            if PROBE in b.index and np.isfinite(b.at[PROBE, "auc"]):
                r.checks.append(probe_check(folder.name, split, aucs[split], b.loc[PROBE]))
        contrast = scd1_score_auc_for(folder / W.PREDICTIONS, labels, "arrest_noncardiac",
                                      split)
        if contrast is not None:
            r.p(f"On the {split_label(split)} patients, the scd1 score's AUC for non-cardiac "
                f"arrest (a contrast: the planted signal is cardiac) is {contrast:.3f}, against "
                f"{aucs[split]:.3f} for scd1.")
            r.checks.append(Check(folder.name, f"{split_label(split)}: scd1 score separates scd1 "
                                  "better than non-cardiac arrest",
                                  f"{aucs[split]:.3f} vs {contrast:.3f}",
                                  bool(aucs[split] > contrast + 0.05)))
    return scd1


#: How :func:`probe_check` words a paired difference's verdict.
VERDICT_WORDS = {"above": "above the probe", "tie": "a tie", "below": "below the probe"}


def probe_check(model: str, split: str, auc: float, probe: pd.Series) -> Check:
    """The deep model's scd1 AUC against the median-beat probe's, on the ECGs the probe
    scored. The check fails when the model is below the probe beyond chance: the paired
    patient-bootstrap interval of the difference lies wholly below 0. A difference whose
    interval holds 0 is a tie and passes, named as one (on a planted linear signal the linear
    probe is near the best possible model, so a point comparison flips with the draw).
    Workspaces from before the paired columns compare the model's AUC on all its ECGs with
    the probe's, as points."""
    if np.isfinite(probe.get("model_auc", np.nan)):
        verdict = difference_verdict(probe["difference_lo"], probe["difference_hi"])
        value = (f"{probe['model_auc']:.3f} vs {probe['auc']:.3f} on {int(probe['n']):,} ECGs "
                 f"(difference {probe['difference']:+.3f}, bootstrap interval "
                 f"{probe['difference_lo']:+.3f} to {probe['difference_hi']:+.3f}: "
                 f"{VERDICT_WORDS[verdict]})")
        return Check(model, f"{split_label(split)} AUC scd1 not below the {PROBE}'s "
                            "(paired interval)", value, verdict != "below")
    return Check(model, f"{split_label(split)} AUC scd1 ≥ the {PROBE}'s",
                 f"{auc:.3f} vs {probe['auc']:.3f}", bool(auc >= probe["auc"]))


def section_learning_curves(r: Report) -> None:
    """Each trained model's history.csv (headline columns) and learning-curve figure."""
    from .training.history import headline_outputs

    r.h("Learning curves")
    found = False
    for folder_name in W.MODEL_DIRS.values():
        root = r.workspace / folder_name
        for folder in sorted(root.glob("*")) if root.exists() else []:
            path = folder / W.HISTORY_FILE
            if not path.exists():
                continue
            found = True
            history = read_table(path, ("seconds",), ("seconds",))
            config = W.read_config(folder)
            outputs, monitor = config.get("outputs", []), config.get("training", {}).get(
                "monitor", "val_loss")
            r.h(f"{folder_name}/{folder.name}", 3)
            r.p(f"{len(history)} epochs in {history['seconds'].sum():.0f} s; best epoch "
                f"{config.get('best_epoch', '?')} by {monitor}. Every output's curve is in "
                f"`{folder_name}/{folder.name}/{W.HISTORY_FILE}`.")
            columns = [c for c in ("epoch", "lr", "train_loss", "val_loss") if c in history]
            columns += [f"{kind}_{name}" for name in headline_outputs(outputs, monitor)
                        for kind in ("auc", "r2") if f"{kind}_{name}" in history]
            r.table(history[columns], 4)
            figure = folder / W.LEARNING_CURVE
            if figure.exists():
                r.figure(figure, f"{folder.name}: losses and headline validation AUC per epoch")
    if not found:
        r.missing(f"modelfits_*/<name>/{W.HISTORY_FILE}", "01_Predictive_Model/x01 and x02")


def member_run(workspace: Path, model_name: str) -> str | None:
    """The ``--run`` a 10-s model was trained with (from its config.json), if recorded."""
    try:
        return W.read_config(workspace / W.model_folder("ecg", model_name)).get("run")
    except PipelineError:
        return None


def predicted_rows(path: Path, labels: pd.DataFrame | None, label: str,
                   split: str = "") -> pd.DataFrame | None:
    """A model's predicted rows (of ``split``) with ``label`` joined on studyId; None when
    there are no predictions or no such label."""
    if labels is None or label not in labels or not path.exists():
        return None
    pred = read_table(path, ("studyId",), ("scd1_hat",))
    if split and "split" in pred:
        pred = pred[pred["split"].astype(str) == split]
    return pred.astype({"studyId": str}).merge(
        labels[["studyId", label]].astype({"studyId": str}), on="studyId")


def auc_or_none(y: pd.Series, score: pd.Series) -> float | None:
    """AUC of ``score`` for 0/1 ``y`` over rows where both are known; None with one class."""
    both = pd.DataFrame({"y": y, "score": score}).dropna()
    if both.empty or both["y"].min() == both["y"].max():
        return None
    return roc_auc(both["y"].to_numpy(float), both["score"].to_numpy(float))


def scd1_score_auc_for(path: Path, labels: pd.DataFrame | None, label: str,
                       split: str = "") -> float | None:
    """AUC of a model's ``scd1_hat`` for another label, on the predicted rows (of ``split``)."""
    rows = predicted_rows(path, labels, label, split)
    if rows is None or "scd1_hat" not in rows:
        return None
    return auc_or_none(rows[label], rows["scd1_hat"])


def oracle_auc_for(path: Path, labels: pd.DataFrame | None, truth: pd.DataFrame | None,
                   split: str) -> float | None:
    """AUC of the planted slur strength (the synthetic truth) for scd1 on the ECGs a model
    predicted in ``split``; None without ground truth or labels."""
    rows = predicted_rows(path, labels, "scd1", split) if truth is not None else None
    if rows is None:
        return None
    rows = rows.merge(truth.astype({"ecg_id": str}), left_on="studyId", right_on="ecg_id")
    return auc_or_none(rows["scd1"], rows["slur_strength"])


def section_ensemble(r: Report, members: dict[str, dict[str, float]]) -> None:
    r.h("Stacking ensemble (01_Predictive_Model/x04_train_ensemble.py)")
    folder = r.workspace / W.PREDICTIONS_DIR / W.ENSEMBLE_DIR
    metrics = _metrics_file(folder, W.METRICS_STEM, "")
    if not metrics.exists():
        return r.missing(str(metrics.relative_to(r.workspace)),
                         Path(W.step("ensemble").script).stem)
    columns = ["score", "n", "n_pos", "n_patients", "auc", "auc_lo", "auc_hi"]
    m = read_table(metrics, tuple(columns), METRIC_NUMBERS)
    split = str(m["split"].iloc[0]) if "split" in m else "val"
    lockbox = _metrics_file(folder, W.METRICS_STEM, "lockbox")
    if lockbox.exists():
        r.p(f"**Lockbox patients** (the figure to trust): the regression fitted once on all "
            f"{split_label(split)} patients scores the lockbox ECGs. AUCs of the ensemble and "
            "of each input, on the same ECGs:")
        r.table(read_table(lockbox, tuple(columns), METRIC_NUMBERS)[columns])
    else:
        r.p("_No lockbox figure: predict every member with `x03_predict.py --part all` and "
            "rerun x04_train_ensemble.py._")
    r.p(f"**{split_label(split).capitalize()} patients**, cross-fitted: a logistic regression "
        f"of scd1 on the members' logits, age and sex, fitted on each half of the "
        f"{split_label(split)} patients and scoring the other half. Out-of-sample for the "
        "regression, but the members chose their epochs on these patients:")
    r.table(m[columns])
    coefficients = folder / W.COEFFICIENTS
    if coefficients.exists():
        c = read_table(coefficients, COEFFICIENT_COLUMNS, ("coef", "se_cluster", "p"))
        r.p("Coefficients per fitted half (log-odds per unit; SEs clustered by patient; a term "
            "that could not be estimated says why):")
        r.table(c[list(COEFFICIENT_COLUMNS)])
    if members:
        rows = [{"model": name, **{f"{split_label(s)} AUC scd1": a for s, a in aucs.items()}}
                for name, aucs in members.items()]
        r.p("The 10-s models on their own (from their evaluations above):")
        r.table(pd.DataFrame(rows))
    for png, caption in ((W.split_file(folder, W.RISK_HISTOGRAM_STEM, "lockbox", ".png"),
                          "lockbox patients"),
                         (W.split_file(folder, W.RISK_HISTOGRAM_STEM, "", ".png"),
                          f"{split_label(split)} patients, cross-fitted")):
        if png.exists():
            r.figure(png, f"ensemble: predicted risk, {caption}")


def section_morphing(r: Report) -> None:
    r.h("Morphing (02_Morphing)")
    out = r.workspace / W.MORPH_DIR
    stats_path = out / W.STATS_TABLE
    if not stats_path.exists():
        return r.missing(f"{W.MORPH_DIR}/{W.STATS_TABLE}", "s12")
    ms = read_table(stats_path, ("beat_id", "stage", "yhat_scd1", "aVL_rs_diff", "status", "steps"),
                    ("yhat_scd1", "aVL_rs_diff", "steps"))
    moved = took_a_step(ms)
    unmoved = ms.loc[ms["status"].eq("ok") & ~moved, "beat_id"].nunique()
    ms = ms[moved]
    wide = ms.pivot_table(index="beat_id", columns="stage", values=["yhat_scd1", "aVL_rs_diff"])
    if len(wide) and {"t0", "final"} <= set(ms["stage"]):
        risk_up = float(np.mean(wide[("yhat_scd1", "final")] > wide[("yhat_scd1", "t0")]))
        rs = wide["aVL_rs_diff"].dropna()
        rs_down = float(np.mean(rs["final"] < rs["t0"])) if len(rs) else np.nan
        r.p(f"{len(wide)} beats morphed ({unmoved} more started at the stop threshold and "
            f"took no step). Predicted scd1 risk rose in {risk_up:.1%}; "
            f"aVL_rs_diff fell in {rs_down:.1%}.")
        r.checks.append(Check("s10 morphing", f"risk rises in ≥ {MORPH_RISK_TARGET:.0%} of morphs",
                              f"{risk_up:.1%}", risk_up >= MORPH_RISK_TARGET))
        r.checks.append(Check("s12 morph stats",
                              f"aVL_rs_diff falls in ≥ {MORPH_AVL_TARGET:.0%} of morphs",
                              f"{rs_down:.1%}", bool(rs_down >= MORPH_AVL_TARGET)))
    section_morph_checks(r, out)
    recon = out / W.RECONSTRUCTION_REPORT
    if recon.exists():
        r.p("Reconstruction error of the generator on held-out patients' beats (s09):")
        r.table(read_table(recon))
    summary = out / W.MORPH_SUMMARY
    if summary.exists():
        table = read_table(summary, (), SUMMARY_NUMBERS)
        r.p("Most changed waveform features, reconstruction -> morph (each patient's beats "
            "averaged; ranked by the mean of the patient means over their SD; Wilcoxon "
            "signed-rank p over patients; delineation points in ms from R):")
        r.table(table[[c for c in SUMMARY_COLUMNS if c in table]].head(15))
    outputs = out / W.MORPH_OUTPUTS
    if outputs.exists():
        table = read_table(outputs, (), SUMMARY_NUMBERS)
        r.p("The beat model's outputs, reconstruction -> morph (yhat_*: logits; p_*: "
            "probabilities):")
        r.table(table[[c for c in SUMMARY_COLUMNS if c in table]].head(10))
    for png in sorted(out.glob("*.png")):
        r.figure(png, png.stem.replace("_", " ").replace("-", " "))


def section_morph_checks(r: Report, out: Path) -> None:
    """What a real finding should also show: aVL among the most changed leads (s12), and
    beat models that never steered the morphs scoring them as riskier too (s10)."""
    leads_path = out / W.MORPH_LEAD_CHANGE
    if leads_path.exists():
        leads = read_table(leads_path, LEAD_CHANGE_COLUMNS, LEAD_CHANGE_COLUMNS[1:])
        leads = leads.sort_values(["rank_qrs", "lead"])
        lo, hi = QRS_WINDOW_MS
        r.p(f"How much each lead changed, reconstruction -> morph: mean |change| in mV over "
            f"the QRS ({lo:+d} to {hi:+d} ms from R), and that over the lead's mean peak-to-peak "
            "amplitude, by which the leads are ranked (low-voltage leads such as aVL change "
            "little in mV); beside them the same over the whole beat, which also counts the "
            "ST segment and the T wave:")
        r.table(leads[list(LEAD_CHANGE_COLUMNS)].head(6))
        avl = leads.loc[leads["lead"] == "aVL"]
        if len(avl):
            rank, whole = int(avl["rank_qrs"].iloc[0]), int(avl["rank_relative"].iloc[0])
            r.checks.append(Check("s12 morph stats", f"aVL among the {MORPH_AVL_RANK_TARGET} "
                                  f"leads whose QRS changed most (change over amplitude)",
                                  f"rank {rank} of {len(leads)} (whole beat: rank {whole})",
                                  rank <= MORPH_AVL_RANK_TARGET))
    independent = out / W.MORPH_INDEPENDENT
    if independent.exists():
        scored = read_table(independent, ("model", "n_beats", "share_raised",
                                          "mean_logit_change"),
                            ("n_beats", "share_raised", "mean_logit_change"))
        if len(scored):
            r.p("Beat models that did not steer the morphs, scoring the same morphed beats "
                "(reconstruction -> morph; a finding of one model's shortcut would not raise "
                "their risk):")
            r.table(scored)
        for row in scored.itertuples():
            r.checks.append(Check(f"s10 independent model {Path(str(row.model)).name}",
                                  f"its risk rises in ≥ {MORPH_RISK_TARGET:.0%} of morphs",
                                  f"{row.share_raised:.1%}",
                                  bool(row.share_raised >= MORPH_RISK_TARGET)))


def describe_data(workspace: Path, data_root: str, truth: pd.DataFrame | None) -> str:
    """The data the workspace analysed: the folder, or the synthetic stand-in with the size
    and seed x00 drew it with (from its marker file)."""
    if truth is None:
        return f"`{data_root}`"
    marker = workspace / data_root / W.SYNTHETIC_MARKER
    try:
        drawn = marker.read_text(encoding="utf-8").strip()
        drawn = drawn.removeprefix(W.SYNTHETIC_MARKER_PREFIX)
    except (OSError, UnicodeDecodeError):
        drawn = ""
    return "synthetic NTUH stand-in (with ground truth)" + (f": {drawn}" if drawn else "")


def section_truth(r: Report, truth: pd.DataFrame | None, df: pd.DataFrame | None) -> None:
    r.h("Was the planted biomarker recovered?")
    if truth is None:
        r.p(f"No `{W.TRUTH_FILE}` beside the data root: this is not the synthetic default, "
            "so there is no ground truth to check against.")
        return
    if df is not None and "scd1" in df:
        merged = df.merge(truth, left_on="studyId", right_on="ecg_id")
        y = merged["scd1"].astype(float)
        r.p(f"Oracle AUC (the planted slur strength itself) for scd1 in the analysed cohort: "
            f"{roc_auc(y.to_numpy(), merged['slur_strength'].to_numpy()):.3f}.")
    if not r.checks:
        r.p("No stage produced a checkable result.")
        return
    table = pd.DataFrame([{"stage": c.stage, "criterion": c.criterion, "value": c.value,
                           "recovered": {True: "yes", False: "NO", None: "n/a"}[c.passed]}
                          for c in r.checks])
    r.table(table)


def guarded(r: Report, section, *args):
    """``section(*args)``; a file it cannot use (a :class:`PipelineError` or an operating-system
    error naming it) becomes a line in the report and in ``r.problems``, and the report goes on
    with the next section (returns None)."""
    try:
        return section(*args)
    except PipelineError as exc:
        problem = str(exc)
    except OSError as exc:
        problem = os_error_line(exc)
    problem = " ".join(problem.split())   # one line, shown as code: no Markdown from a file
    r.problems.append(problem)
    r.p(f"_Not shown:_ `{problem}`")
    return None


def section_unfinished(r: Report) -> None:
    """A warning line for every signal folder (and the morph run) a step left unfinished
    (killed or stopped by an error): what the report reads from it may mix two runs."""
    for folder in (W.TEN_SEC_DIR, W.BEATS_DIR, W.MORPH_BEATS_DIR, W.MORPH_DIR):
        try:
            check_finished(r.workspace / folder)
        except PipelineError as exc:
            problem = " ".join(str(exc).split())
            r.problems.append(problem)
            r.p(f"**Warning:** `{problem}`; the tables below may mix two runs.")


def clear_figures(out_dir: Path, default: bool) -> None:
    """Remove ``out_dir/figures`` (an earlier report's), but only in a folder the report
    owns: the workspace's ``reports/`` (``default``), a new or empty one, or one holding
    ``report.md``; and only when the folder holds nothing but PNG figures. Otherwise one
    :class:`PipelineError` says so, and nothing is deleted."""
    figures = out_dir / "figures"
    owned = (default or not out_dir.is_dir() or not any(out_dir.iterdir())
             or (out_dir / W.REPORT_MD).is_file())
    if not owned:
        raise PipelineError(f"--out {out_dir}: a folder the report did not write (it holds "
                            f"files but no {W.REPORT_MD}); give the report a folder of its own")
    if figures.is_symlink() or (figures.exists() and not figures.is_dir()):
        raise PipelineError(f"{figures}: not a folder of the report's figures; move it away")
    if figures.is_dir():
        other = [p for p in figures.iterdir() if not (p.is_file() and p.suffix == ".png")]
        if other:
            raise PipelineError(f"{figures}: holds {other[0].name!r}, not one of the "
                                "report's PNG figures; move it away (the report replaces "
                                "this folder)")
        shutil.rmtree(figures)  # no figures of an earlier run


def build_report(workspace: Path, data_root: str = W.DEFAULT_DATA_ROOT,
                 out: str = REPORT_DIR, problems: bool = False) -> Path | tuple[Path, list[str]]:
    """Write ``<out>/report.md`` and ``report.html`` for ``workspace``; returns the Markdown
    path (with ``problems``: and the files that could not be used, each shown in the report as
    a line naming it instead of its section's content)."""
    workspace = Path(workspace)
    r = Report(workspace, workspace / out)
    clear_figures(r.out_dir, default=Path(out) == Path(REPORT_DIR))
    r.lines = ["# Run report", ""]
    truth = guarded(r, find_truth, workspace, data_root)
    r.lines[2:2] = [f"Workspace: `{workspace}`. Data: {describe_data(workspace, data_root, truth)}."]
    section_unfinished(r)
    df = guarded(r, section_cohort, r)
    guarded(r, section_example_ecg, r)
    guarded(r, section_gain, r)
    guarded(r, section_waterfall, r)
    guarded(r, section_biomarker, r, df, truth)
    members = guarded(r, section_models, r, df, truth) or {}
    guarded(r, section_learning_curves, r)
    guarded(r, section_ensemble, r, members)
    guarded(r, section_morphing, r)
    guarded(r, section_truth, r, truth, df)
    guarded(r, section_timings, r)
    path = r.out_dir / W.REPORT_MD
    write_text("\n".join(r.lines) + "\n", path)
    # The same report as one self-contained HTML file (figures embedded) beside it.
    write_text(markdown_to_html(r.lines, r.out_dir), r.out_dir / HTML_REPORT)
    return (path, r.problems) if problems else path


@script_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=f"Write {REPORT_DIR}/{W.REPORT_MD} and "
                                                 f"{W.REPORT_HTML} for a pipeline workspace.")
    parser.add_argument("--workspace", type=Path, default=Path("."))
    parser.add_argument("--data-root", default=W.DEFAULT_DATA_ROOT)
    parser.add_argument("--out", default=REPORT_DIR)
    args = parser.parse_args(argv)
    path, problems = build_report(args.workspace, args.data_root, args.out, problems=True)
    for problem in problems:
        print(f"[report] warning: not shown: {problem}", file=sys.stderr)
    print(f"report written to {path} and {path.with_name(HTML_REPORT)} "
          f"({path.with_name(HTML_REPORT).stat().st_size / 1e6:.1f} MB, figures embedded)"
          + (f"; {len(problems)} file(s) could not be used, named in the report" if problems
             else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
