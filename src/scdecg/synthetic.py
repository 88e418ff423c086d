"""A seeded synthetic stand-in for the arrest-ntuh-ecg v1 release.

Nobody on the project has the NTUH data, so the pipeline runs by default on this generator's
output: the same folder layout, tables and columns (see ``ntuh-data.md``), ECGs that look and
behave like 10-s 12-lead recordings, and a planted biomarker for the pipeline to find.

Three layers, each usable on its own:

* **One ECG** -- :func:`sample_ecg_params` draws an :class:`EcgParams` and
  :func:`simulate_ecg` turns it into a clean ``(12, 5000)`` float array in microvolts. The heart
  is one 3-D dipole built from Gaussian waves (P, Q, R, S, T and optional ST shift, delta wave,
  pacing spike) placed on a beat grid with beat-to-beat RR variability. Lead I and II are its
  frontal-plane projections, V1..V6 its projections on precordial lead vectors; noise and
  baseline wander are added to these eight recorded leads and III, aVR, aVL, aVF are derived from
  I and II, so Einthoven's and Goldberger's identities hold to floating-point precision.
* **The cohort** -- :func:`sample_cohort` draws patients (arrest cases and yearly controls), their
  ECGs, dates, demographics and per-ECG parameters, plus the few deliberately odd rows.
* **The files** -- :func:`write_synthetic_ntuh` writes every table, the stacked int16 waveform
  arrays (derived limb leads multiplied by the NTUH gain fault, 4.88) and the ground truth.

The planted biomarker: in cardiac-cause arrest patients the terminal R downstroke along the aVL
axis (-30 deg) is slurred; ``EcgParams.slur`` in [0, 1] sets how much. Everyone else has the same
parameter at background levels (overlapping distributions). Every R has an aVL-parallel
component of at least ``SLUR_MIN_UV`` (:func:`r_vector`), which the slur slows without raising
it, so it is visible in every ECG, whatever its axis.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .constants import (BEAT_POST, BEAT_PRE, CONTROL_YEARS, DERIVED_LIMB_LEADS, FS, LEAD_INDEX,
                        LEADS, N_LEADS, N_SAMPLES, NTUH_GAIN_FAULT)
from .errors import PipelineError
from .io import atomic_path, remove_leftovers, replace_dir, write_csv, write_text
from .progress import progress_bar
from .workspace import (COMORBIDITY_TABLE, CONTROL_COHORT, CONTROL_DIR, DIAGNOSIS, GLOBAL,
                        PER_LEAD, RESTING, ROSC_OUTCOMES, STUDY_COHORT, STUDY_DIR, STUDY_ECGS,
                        SYNTHETIC_MARKER, SYNTHETIC_MARKER_PREFIX, TRUTH_FILE, WAVEFORM_ARRAY,
                        WAVEFORM_INDEX)

# --------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------
SQRT3_2 = np.sqrt(3.0) / 2.0
#: Dipole axes: x to the patient's left, y inferior (down), z anterior.
#: Precordial lead vectors (x, y, z): V1 points right-anterior, V6 left-lateral, all slightly
#: inferior (y = 0.1), scaled by PRECORDIAL_GAIN (chest leads read larger than limb leads).
PRECORDIAL_ANGLES_DEG = (120.0, 95.0, 75.0, 60.0, 30.0, 0.0)  # in the x-z plane, from +x to +z
PRECORDIAL_GAIN = 1.3
AVL_AXIS_DEG = -30.0
#: Rows of the stored array multiplied by the NTUH gain fault.
DERIVED_ROWS = [LEAD_INDEX[name] for name in DERIVED_LIMB_LEADS]


def _unit(axis_deg: float, elevation_deg: float = 0.0) -> np.ndarray:
    """Unit vector at frontal angle ``axis_deg`` (0 = left, 90 = down) tilted anteriorly."""
    a, e = np.deg2rad(axis_deg), np.deg2rad(elevation_deg)
    return np.array([np.cos(a) * np.cos(e), np.sin(a) * np.cos(e), np.sin(e)])


PRECORDIAL_VECTORS = PRECORDIAL_GAIN * np.array(
    [[np.cos(np.deg2rad(a)), 0.1, np.sin(np.deg2rad(a))] for a in PRECORDIAL_ANGLES_DEG])
AVL_UNIT = _unit(AVL_AXIS_DEG)
_I, _II = np.array([1.0, 0.0, 0.0]), np.array([0.5, SQRT3_2, 0.0])
#: Each lead's vector in dipole space, rows in LEADS order (used for per-lead ST/delta flags).
LEAD_VECTORS = np.vstack([_I, _II, _II - _I, -(_I + _II) / 2, _I - _II / 2, _II - _I / 2,
                          PRECORDIAL_VECTORS])


def limb_leads(lead_i: np.ndarray, lead_ii: np.ndarray) -> dict[str, np.ndarray]:
    """The six limb leads from I and II by Einthoven's and Goldberger's identities."""
    return {"I": lead_i, "II": lead_ii, "III": lead_ii - lead_i, "aVR": -(lead_i + lead_ii) / 2,
            "aVL": lead_i - lead_ii / 2, "aVF": lead_ii - lead_i / 2}


# --------------------------------------------------------------------------------------
# One ECG
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EcgParams:
    """Everything that shapes one simulated ECG. Times in ms, amplitudes in microvolts.

    ``slur`` in [0, 1] is the planted biomarker: how much the terminal R downstroke along the
    aVL axis is slowed (0 = none).
    """

    heart_rate: float = 70.0          # bpm
    rr_jitter: float = 0.03           # SD of beat-to-beat RR, fraction of the mean RR
    axis_deg: float = 45.0            # frontal QRS axis
    elevation_deg: float = -20.0      # QRS vector tilt towards anterior (negative = posterior)
    r_amp: float = 1300.0
    q_amp: float = 150.0
    s_amp: float = 350.0
    p_amp: float = 130.0
    t_amp: float = 350.0
    t_axis_offset_deg: float = 10.0   # T axis minus QRS axis
    pr_ms: float = 160.0              # P onset to QRS onset
    qrs_ms: float = 90.0
    qt_ms: float = 390.0              # QRS onset to T end
    slur: float = 0.0
    st_early: tuple[float, float, float] = (0.0, 0.0, 0.0)  # ST vector, J to J+80 ms
    st_late: tuple[float, float, float] = (0.0, 0.0, 0.0)   # ST vector, J+80 ms to T peak
    delta_wave: bool = False          # pre-excitation: short PR, slow QRS upstroke
    paced: bool = False               # pacing spike before each QRS
    lbbb: bool = False                # label only: sample_ecg_params widens QRS, turns T discordant
    noise_uv: float = 15.0            # white noise SD per recorded lead
    wander_uv: float = 60.0           # baseline wander amplitude per recorded lead
    mains_uv: float = 3.0             # 60 Hz hum amplitude
    phase: float = 0.0                # time of the first R peak, fraction of one RR

    @property
    def rr_ms(self) -> float:
        return 60000.0 / self.heart_rate


#: Template window around each R peak (samples): long enough for PR and QT at slow rates.
TEMPLATE_PRE = int(0.45 * FS)
TEMPLATE_POST = int(0.80 * FS)
#: How much ``slur`` = 1 widens the aVL-parallel R downstroke, and how much of the S wave's
#: aVL-parallel part it removes.
SLUR_WIDENING = 3.0
SLUR_S_FADE = 1.0
#: The smallest aVL-parallel R component (µV) of every ECG, which the slur acts on.
SLUR_MIN_UV = 600.0
PACING_SPIKE_UV = 4000.0
WANDER_STEP = 25      # samples between exact evaluations of the baseline wander
MAINS_HZ = 60.0       # Taiwan's mains frequency


def _gauss(t: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((t - centre) / width) ** 2)


def r_vector(p: EcgParams) -> np.ndarray:
    """The R wave's dipole (µV): ``r_amp`` along the QRS axis, plus what lifts its component
    along the aVL axis to ``SLUR_MIN_UV`` (cases and controls alike: an axis near +60 deg
    would leave almost no R in aVL for the slur to slow)."""
    r_vec = p.r_amp * _unit(p.axis_deg, p.elevation_deg)
    return r_vec + max(SLUR_MIN_UV - float(r_vec @ AVL_UNIT), 0.0) * AVL_UNIT


def frontal_axis_deg(p: EcgParams) -> float:
    """The frontal QRS axis the waveform shows (of :func:`r_vector`; differs from
    ``p.axis_deg`` where the aVL floor turned the R vector left)."""
    r_vec = r_vector(p)
    return float(np.rad2deg(np.arctan2(r_vec[1], r_vec[0])))


def dipole_template(p: EcgParams) -> np.ndarray:
    """One beat of the heart dipole (3, TEMPLATE_PRE + TEMPLATE_POST) µV, R at TEMPLATE_PRE."""
    t = (np.arange(-TEMPLATE_PRE, TEMPLATE_POST) / FS)        # seconds from the R peak
    qrs, qt = p.qrs_ms / 1000.0, p.qt_ms / 1000.0
    onset = -0.45 * qrs                                       # QRS onset
    sigma_r = qrs / 7.0
    r_dir = _unit(p.axis_deg, p.elevation_deg)
    out = np.zeros((3, t.size))

    def add(vec: np.ndarray, shape: np.ndarray) -> None:
        out[:] += np.outer(vec, shape)

    # Depolarisation. The R vector has at least SLUR_MIN_UV along the aVL axis (r_vector).
    # The slur slows the downstroke of that component: after the peak it decays as a wider
    # Gaussian of the same height (it adds the slow minus the normal downstroke along
    # AVL_UNIT), so it shows in I, aVL, -III and the lateral chest leads whatever the axis,
    # and never raises the R peak.
    r_vec = r_vector(p)
    r_shape = _gauss(t, 0.0, sigma_r)
    add(r_vec, r_shape)
    if p.slur:
        slow = sigma_r * (1.0 + SLUR_WIDENING * p.slur)
        terminal = np.where(t <= 0, 0.0, _gauss(t, 0.0, slow) - r_shape)
        add(float(r_vec @ AVL_UNIT) * AVL_UNIT, terminal)
    add(p.q_amp * _unit(p.axis_deg + 160.0, 45.0), _gauss(t, onset + 0.12 * qrs, qrs / 14.0))
    # The S wave's aVL-parallel part fades with the slur: the R runs slowly into the baseline.
    s_vec = p.s_amp * _unit(p.axis_deg + 170.0, -35.0)
    s_par = (s_vec @ AVL_UNIT) * AVL_UNIT
    add(s_vec - SLUR_S_FADE * p.slur * s_par, _gauss(t, 0.32 * qrs, qrs / 9.0))
    if p.delta_wave:
        add(0.25 * p.r_amp * r_dir, _gauss(t, onset - 0.01, 0.02))
    # Repolarisation and atria.
    sigma_t = 0.045 * np.sqrt(qt / 0.4)
    t_peak = onset + qt - 2.5 * sigma_t
    add(p.t_amp * _unit(p.axis_deg + p.t_axis_offset_deg, 15.0), _gauss(t, t_peak, sigma_t))
    add(p.p_amp * _unit(55.0, 10.0), _gauss(t, onset - p.pr_ms / 1000.0 + 0.05, 0.02))
    # ST segment: smooth plateaus from the J point.
    j = onset + qrs
    rise = 1.0 / (1.0 + np.exp(-(t - j) / 0.006))
    split = 1.0 / (1.0 + np.exp(-(t - j - 0.08) / 0.006))
    fade = 1.0 / (1.0 + np.exp((t - t_peak) / 0.03))
    add(np.asarray(p.st_early), rise * (1.0 - split) * fade)
    add(np.asarray(p.st_late), split * fade)
    if p.paced:  # a 2-sample pacing spike 2 ms before QRS onset, from a right-ventricular lead
        k = TEMPLATE_PRE + int(round((onset - 0.002) * FS))
        out[:, k:k + 2] += PACING_SPIKE_UV * _unit(-60.0, -20.0)[:, None]
    return out


def beat_positions(p: EcgParams, rng: np.random.Generator,
                   n_samples: int = N_SAMPLES) -> np.ndarray:
    """R-peak sample positions covering the record (and a template length beyond each edge)."""
    rr = p.rr_ms / 1000.0 * FS
    n = int(np.ceil((n_samples + TEMPLATE_PRE + TEMPLATE_POST) / (0.6 * rr))) + 2
    breaths = 2 * np.pi * np.arange(n) / rng.uniform(3.5, 5.5)     # respiratory sinus arrhythmia
    resp = 0.03 * np.sin(breaths + rng.uniform(0, 2 * np.pi))
    rrs = rr * np.clip(1.0 + p.rr_jitter * rng.standard_normal(n) + resp, 0.6, 1.6)
    start = -TEMPLATE_POST + p.phase * rr
    pos = start + np.concatenate([[0.0], np.cumsum(rrs[:-1])])
    pos = np.round(pos).astype(np.int64)
    return pos[pos < n_samples + TEMPLATE_PRE]


def _tile(template: np.ndarray, positions: np.ndarray, scales: np.ndarray,
          n_samples: int) -> np.ndarray:
    """Overlap-add ``template`` (C, W) at each position (template index PRE on the position)."""
    width = template.shape[1]
    idx = positions[:, None] - TEMPLATE_PRE + np.arange(width)[None, :]
    keep = (idx >= 0) & (idx < n_samples)
    flat_idx = idx[keep]
    out = np.empty((template.shape[0], n_samples))
    weights = scales[:, None] * np.ones((1, width))
    for c in range(template.shape[0]):
        out[c] = np.bincount(flat_idx, weights=(weights * template[c])[keep], minlength=n_samples)
    return out


def simulate_ecg(p: EcgParams, rng: np.random.Generator, n_samples: int = N_SAMPLES,
                 return_rpeaks: bool = False):
    """A clean 12-lead ECG, float64 ``(12, n_samples)`` in µV at 500 Hz (lead order LEADS).

    "Clean" means without the NTUH gain fault: III, aVR, aVL, aVF are exact functions of I and
    II. Noise, baseline wander and mains hum (as set in ``p``) are added to the recorded leads
    I, II, V1..V6 before the derived leads are formed. With ``return_rpeaks`` also returns the
    R-peak sample positions inside the record.
    """
    positions = beat_positions(p, rng, n_samples)
    scales = 1.0 + 0.05 * np.sin(2 * np.pi * np.arange(positions.size) / 4.5
                                 + rng.uniform(0, 2 * np.pi))
    dipole = _tile(dipole_template(p), positions, scales, n_samples)
    recorded = np.empty((8, n_samples))                      # I, II, V1..V6
    recorded[0] = dipole[0]
    recorded[1] = 0.5 * dipole[0] + SQRT3_2 * dipole[1]
    recorded[2:] = PRECORDIAL_VECTORS @ dipole
    # Baseline wander: two slow sinusoids per lead, evaluated every 25 samples (50 ms) and
    # interpolated (exact to < 0.1 %, and 25x fewer sines).
    t = np.arange(n_samples) / FS
    coarse = t[::WANDER_STEP]
    if coarse[-1] != t[-1]:
        coarse = np.append(coarse, t[-1])
    freqs = rng.uniform(0.1, 0.45, size=(8, 2))
    phases = rng.uniform(0, 2 * np.pi, size=(8, 2))
    wander = np.sin(2 * np.pi * freqs[:, :, None] * coarse + phases[:, :, None]).sum(axis=1)
    gains = p.wander_uv * rng.uniform(0.3, 1.0, size=8) / 2.0
    for k in range(8):
        recorded[k] += gains[k] * np.interp(t, coarse, wander[k])
    recorded += p.noise_uv * rng.standard_normal((8, n_samples))
    # 60 Hz mains hum: sin(wt + phi) = sin(wt) cos(phi) + cos(wt) sin(phi).
    phi = rng.uniform(0, 2 * np.pi, size=(8, 1))
    sin_wt, cos_wt = np.sin(2 * np.pi * MAINS_HZ * t), np.cos(2 * np.pi * MAINS_HZ * t)
    recorded += p.mains_uv * (sin_wt * np.cos(phi) + cos_wt * np.sin(phi))
    ecg = np.empty((N_LEADS, n_samples))
    for name, lead in limb_leads(recorded[0], recorded[1]).items():
        ecg[LEAD_INDEX[name]] = lead
    ecg[LEAD_INDEX["V1"]:] = recorded[2:]
    if return_rpeaks:
        return ecg, positions[(positions >= 0) & (positions < n_samples)]
    return ecg


# --------------------------------------------------------------------------------------
# Drawing parameters, and the metadata each parameter set implies
# --------------------------------------------------------------------------------------
#: Faults that change the simulated heart or recording (drawn into EcgParams).
PARAM_FAULTS = ("very_noisy", "bradycardia", "tachycardia", "paced")
#: Faults applied to the stored samples after simulation.
STORAGE_FAULTS = ("flat_lead", "saturation", "missing_tail")
FAULTS = PARAM_FAULTS + STORAGE_FAULTS
#: Per-lead measurement-matrix bit codes.
STELEV_CODE, STDOWN_CODE, DELTA_CODE = 8, 4, 32
ST_FLAG_UV = 100.0      # ST deviation (µV) that earns a lead its ST flag
DELTA_FLAG_UV = 100.0


def sample_ecg_params(rng: np.random.Generator, slur: float = 0.0, fault: str = "",
                      age: float = 60.0) -> EcgParams:
    """Draw a plausible adult ECG's parameters (``fault`` one of PARAM_FAULTS or "" / other).

    ``slur`` is passed through unchanged; ``age`` nudges the QRS axis leftwards and the QTc up.
    """
    hr = float(np.clip(rng.normal(72, 12), 45, 125))
    qrs = float(np.clip(rng.normal(92, 10), 70, 118))
    t_offset = float(rng.normal(10, 20))
    lbbb = rng.random() < 0.03
    delta = rng.random() < 0.01
    pr = float(np.clip(rng.normal(160, 20), 110, 240))
    if lbbb:
        qrs, t_offset = float(rng.uniform(130, 170)), 180.0 + float(rng.normal(0, 15))
    if delta:
        pr = float(rng.uniform(90, 115))
    qtc = float(np.clip(rng.normal(415 + 0.3 * (age - 60), 22), 360, 495))
    if rng.random() < 0.02:
        qtc = float(rng.uniform(500, 540))
    st_early = st_late = (0.0, 0.0, 0.0)
    if rng.random() < 0.07:
        direction = rng.standard_normal(3)
        early = direction / np.linalg.norm(direction) * rng.uniform(100, 300)
        st_early = tuple(early)
        st_late = tuple(early * rng.uniform(-0.8, 1.0))
    paced = fault == "paced"
    noise = float(rng.uniform(5, 25))
    rr_jitter = float(rng.uniform(0.01, 0.06))
    if fault == "bradycardia":
        hr = float(rng.uniform(28, 39))
    elif fault == "tachycardia":
        hr = float(rng.uniform(131, 175))
    elif fault == "very_noisy":
        noise = float(rng.uniform(150, 400))
    elif paced:
        hr, qrs, rr_jitter = float(rng.uniform(60, 80)), float(rng.uniform(140, 180)), 0.003
        t_offset = 180.0
    qt = qtc * np.sqrt(60.0 / hr)
    return EcgParams(
        heart_rate=hr, rr_jitter=rr_jitter,
        axis_deg=float(np.clip(rng.normal(40 - 0.3 * (age - 60), 28), -60, 110)),
        elevation_deg=float(rng.normal(-20, 10)),
        r_amp=float(np.clip(rng.lognormal(np.log(1200), 0.3), 400, 2500)),
        q_amp=float(rng.uniform(50, 250)), s_amp=float(rng.uniform(100, 600)),
        p_amp=0.0 if paced else float(rng.uniform(60, 200)), t_amp=float(rng.uniform(150, 500)),
        t_axis_offset_deg=t_offset, pr_ms=pr, qrs_ms=qrs, qt_ms=float(qt), slur=float(slur),
        st_early=st_early, st_late=st_late, delta_wave=delta, paced=paced, lbbb=lbbb,
        noise_uv=noise, wander_uv=float(rng.uniform(20, 150)), mains_uv=float(rng.uniform(0, 10)),
        phase=float(rng.random()))


def slur_beat_pairs(n_ecgs: int, step: float, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray]:
    """What the planted slur itself changes: for ``n_ecgs`` parameter draws (slur strength s
    from the background Beta(2, 5), age uniform in 40-85), the noise-free beat (12 leads,
    ``BEAT_PRE + BEAT_POST`` samples, R at ``BEAT_PRE``, mV) with slur s and with s + ``step``
    (at most 1). Returns (before, after), each (n_ecgs, 12, 300)."""
    cut = slice(TEMPLATE_PRE - BEAT_PRE, TEMPLATE_PRE + BEAT_POST)
    pairs = []
    for _ in range(n_ecgs):
        slur = rng.beta(2.0, 5.0)
        params = sample_ecg_params(rng, slur=slur, age=rng.uniform(40, 85))
        slurred = replace(params, slur=min(slur + step, 1.0))
        pairs.append([LEAD_VECTORS @ dipole_template(q)[:, cut] / 1000.0
                      for q in (params, slurred)])
    beats = np.array(pairs)
    return beats[:, 0], beats[:, 1]


def lead_flag_codes(p: EcgParams) -> np.ndarray:
    """Per-lead measurement-matrix codes (int, LEADS order): 8 ST elevation, 4 ST depression,
    32 delta wave, OR-ed together (so 12 = elevation and depression in one lead)."""
    early, late = LEAD_VECTORS @ np.asarray(p.st_early), LEAD_VECTORS @ np.asarray(p.st_late)
    codes = np.zeros(N_LEADS, dtype=np.int64)
    codes |= np.where(np.maximum(early, late) >= ST_FLAG_UV, STELEV_CODE, 0)
    codes |= np.where(np.minimum(early, late) <= -ST_FLAG_UV, STDOWN_CODE, 0)
    if p.delta_wave:
        delta = LEAD_VECTORS @ (0.25 * p.r_amp * _unit(p.axis_deg, p.elevation_deg))
        codes |= np.where(np.abs(delta) >= DELTA_FLAG_UV, DELTA_CODE, 0)
    return codes


def ecg_measurements(p: EcgParams, rng: np.random.Generator) -> dict[str, float]:
    """The cart's global measurements for ``p`` (ms, bpm), with small measurement error."""
    rr_s = 60.0 / p.heart_rate
    qt = p.qt_ms + rng.normal(0, 4)
    return {"ventricular_rate": int(round(p.heart_rate)),
            "atrial_rate": int(round(p.heart_rate + (rng.normal(0, 15) if p.paced else 0))),
            "qrs_duration": int(round(p.qrs_ms + rng.normal(0, 2))),
            "qt_interval": int(round(qt)),
            "qtc_frederica": int(round(qt / rr_s ** (1 / 3))),
            "qtc": int(round(qt / np.sqrt(rr_s))),
            "avg_rr": int(round(rr_s * 1000))}


def diagnosis_statements(p: EcgParams, codes: np.ndarray, qtc: float) -> list[str]:
    """Lowercase interpretation statements consistent with ``p`` and its per-lead codes."""
    out: list[str] = []
    if p.paced:
        out.append("electronic ventricular pacemaker")
        if p.phase < 0.5:  # some carts add a second phrasing
            out.append("ventricular-paced rhythm")
    elif p.heart_rate < 40:
        out.append("marked sinus bradycardia")
    elif p.heart_rate < 60:
        out.append("sinus bradycardia")
    elif p.heart_rate > 100:
        out.append("sinus tachycardia")
    else:
        out.append("normal sinus rhythm")
    axis = frontal_axis_deg(p)
    if axis < -30:
        out.append("left axis deviation")
    elif axis > 90:
        out.append("right axis deviation")
    if p.lbbb:
        out.append("left bundle branch block")
    if p.delta_wave:
        out.append("ventricular pre-excitation, wpw pattern type a")
    if (codes & STELEV_CODE).any():
        out.append("st elevation, consider injury or acute infarct")
    if (codes & STDOWN_CODE).any():
        out.append("st depression, consider subendocardial injury")
    if qtc > 470:
        out.append("prolonged qt")
    normal = out == ["normal sinus rhythm"]
    out.append("normal ecg" if normal else "abnormal ecg")
    return out


# --------------------------------------------------------------------------------------
# The cohort: patients, their ECGs, dates and demographics
# --------------------------------------------------------------------------------------
STUDY_GROUP = "study"
PRE_TAG, POST_TAG = "[0]pre", "[0]post"
CONTROL_PRE, CONTROL_CONTROL = "pre", "control"
CARDIAC_CAUSE = "cardiac event"
NONCARDIAC_CAUSES = ("respiratory failure", "trauma", "overdose", "sepsis", "drowning",
                     "hanging", "intracranial hemorrhage", "electrolyte imbalance")
RHYTHMS = ("VT/VF", "PEA", "asystole")
#: Initial-rhythm probabilities (VT/VF, PEA, asystole) by cause.
RHYTHM_P = {True: (0.45, 0.30, 0.25), False: (0.08, 0.42, 0.50)}
DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%dT%H:%M:%S")
DATETIME_FORMAT_P = (0.5, 0.25, 0.25)
STUDY_EPOCH = pd.Timestamp("2013-01-01")


@dataclass(frozen=True)
class CohortDesign:
    """Proportions and rates of the synthetic cohort.

    The defaults give about 1.6 stored ECGs per patient (NTUH: ~18,000 ECGs of ~10,950
    patients), about 16 % of patients with a 1-year SCD label on their selected ECG, and an
    oracle AUC (slur strength for scd1) of about 0.85.
    """

    study_fraction: float = 0.35        # patients with an arrest
    cardiac_fraction: float = 0.60      # arrests of cardiac cause
    pre_ecg_counts: tuple[float, float, float] = (0.5, 0.3, 0.2)  # P(1, 2, 3 pre-arrest ECGs)
    post_ecg_mean: float = 1.1          # mean number of "[0]post" ECGs per arrest patient (Poisson)
    within_year_fraction: float = 0.60  # pre-arrest ECGs 2-365 days before ROSC
    same_day_fraction: float = 0.04     # pre-arrest ECGs < 2 days before ROSC
    max_years_before: float = 10.0
    fault_fraction: float = 0.06        # ECGs with one injected fault, spread over FAULTS
    unparsable_datetime_fraction: float = 0.003
    # Planted slur strength: Beta(a, b) for cardiac-cause arrests and for everyone else.
    slur_cardiac: tuple[float, float] = (4.0, 3.0)
    slur_background: tuple[float, float] = (2.0, 5.0)


def _ids(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct UUID-4 strings drawn from ``rng``."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    ids = [str(uuid.UUID(bytes=row.tobytes(), version=4)) for row in raw]
    if len(set(ids)) != n:  # astronomically unlikely
        raise PipelineError("synthetic id collision; choose another --seed")
    return ids


def _format_datetimes(times: pd.Series, rng: np.random.Generator) -> np.ndarray:
    """Each timestamp in one of DATETIME_FORMATS, chosen at random."""
    choice = rng.choice(len(DATETIME_FORMATS), size=len(times), p=DATETIME_FORMAT_P)
    out = np.empty(len(times), dtype=object)
    for k, fmt in enumerate(DATETIME_FORMATS):
        mask = choice == k
        out[mask] = times[mask].dt.strftime(fmt).to_numpy()
    return out


def _age_strings(ages: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Whole-year ages as strings, "89+" from 90 on, and a few blanks and "unknown"s."""
    out = np.where(ages >= 90, "89+", np.floor(ages).astype(int).astype(str)).astype(object)
    u = rng.random(ages.size)
    out[u < 0.01] = ""
    out[(u >= 0.01) & (u < 0.015)] = "unknown"
    return out


def _sex_strings(female_p: float, n: int, rng: np.random.Generator) -> np.ndarray:
    out = np.where(rng.random(n) < female_p, "female", "male").astype(object)
    out[rng.random(n) < 0.01] = ""
    return out


def _minutes(days: np.ndarray) -> pd.TimedeltaIndex:
    """Durations in days rounded to whole minutes (so every datetime format is exact)."""
    return pd.to_timedelta(np.round(np.asarray(days) * 1440.0), unit="min")


def sample_patients(n_patients: int, rng: np.random.Generator,
                    design: CohortDesign) -> pd.DataFrame:
    """One row per patient: group, cause, rhythm, event dates, demographics and slur strength."""
    n_study = int(round(design.study_fraction * n_patients))
    n_cardiac = int(round(design.cardiac_fraction * n_study))
    years = [str(CONTROL_YEARS[k % len(CONTROL_YEARS)]) for k in range(n_patients - n_study)]
    group = np.array([STUDY_GROUP] * n_study + years, dtype=object)
    cardiac = np.arange(n_patients) < n_cardiac
    study = group == STUDY_GROUP
    other_cause = rng.choice(NONCARDIAC_CAUSES, size=n_patients)
    cause = np.where(cardiac, CARDIAC_CAUSE, other_cause).astype(object)
    cause[~study] = ""
    cause[study & ~cardiac & (rng.random(n_patients) < 0.03)] = ""  # cause not recorded
    rhythm = np.array([rng.choice(RHYTHMS, p=RHYTHM_P[bool(c)]) for c in cardiac], dtype=object)
    rhythm[~study] = ""
    a_c, b_c = design.slur_cardiac
    a_b, b_b = design.slur_background
    slur = np.where(cardiac, rng.beta(a_c, b_c, n_patients), rng.beta(a_b, b_b, n_patients))
    age = np.clip(np.where(study, rng.normal(64, 15, n_patients), rng.normal(56, 17, n_patients)),
                  18, 99)
    female = rng.random(n_patients) < np.where(study, 0.36, 0.5)
    # Study: ROSC date; controls: date of the "pre" ECG within the group's year.
    rosc = STUDY_EPOCH + _minutes(rng.uniform(0, 9 * 365, n_patients))
    years = np.where(study, "2000", group).astype(str)
    first_pre = pd.to_datetime(years, format="%Y") + _minutes(rng.uniform(0, 364, n_patients))
    anchor = pd.Series(np.where(study, rosc, first_pre))
    patients = pd.DataFrame({
        "patient_ngsci_id": _ids(rng, n_patients), "group": group, "arrest": study,
        "cardiac_cause": cardiac, "cause": cause, "initial_rhythm": rhythm,
        "slur_strength": slur, "age_at_anchor": age, "female": female,
        "anchor": anchor,  # ROSC (study) or the pre ECG (controls)
    })
    return patients.iloc[rng.permutation(n_patients)].reset_index(drop=True)


def _days_before_rosc(rng: np.random.Generator, n: int, design: CohortDesign) -> np.ndarray:
    """Days from each pre-arrest ECG to ROSC: a few same-day, many within a year, the rest
    log-uniform up to ``max_years_before``."""
    u = rng.random(n)
    late = np.exp(rng.uniform(np.log(365.0), np.log(365.0 * design.max_years_before), n))
    days = np.where(u < design.within_year_fraction, rng.uniform(2.0, 365.0, n), late)
    return np.where(u > 1.0 - design.same_day_fraction, rng.uniform(0.0, 2.0, n), days)


def sample_ecgs(patients: pd.DataFrame, rng: np.random.Generator,
                design: CohortDesign) -> pd.DataFrame:
    """One row per ECG (pre-arrest, post-arrest, control "pre" and "control" ECGs)."""
    rows = []
    n_pre = rng.choice([1, 2, 3], size=len(patients), p=design.pre_ecg_counts)
    for pt, k in zip(patients.itertuples(index=False), n_pre):
        base = {"patient_ngsci_id": pt.patient_ngsci_id, "group": pt.group}
        if pt.arrest:
            for days in np.sort(_days_before_rosc(rng, int(k), design))[::-1]:
                rows.append({**base, "ecg_timetag": PRE_TAG, "days_to_event": days,
                             "waveform": True})
            for days in np.sort(-rng.uniform(0.05, 10.0, rng.poisson(design.post_ecg_mean))):
                rows.append({**base, "ecg_timetag": POST_TAG, "days_to_event": days,
                             "waveform": True})
        else:
            follow_up = rng.uniform(30.0, 1500.0)
            rows.append({**base, "ecg_timetag": CONTROL_PRE, "days_to_event": follow_up,
                         "waveform": True})
            rows.append({**base, "ecg_timetag": CONTROL_CONTROL, "days_to_event": 0.0,
                         "waveform": False})
    ecgs = pd.DataFrame(rows)
    ecgs["days_to_event"] = np.round(ecgs["days_to_event"] * 1440.0) / 1440.0  # whole minutes
    per_pt = patients.set_index("patient_ngsci_id")
    pt = per_pt.loc[ecgs["patient_ngsci_id"]].reset_index()
    ecgs["ecg_id"] = _ids(rng, len(ecgs))
    for col in ("arrest", "cardiac_cause", "slur_strength", "cause", "initial_rhythm"):
        ecgs[col] = pt[col].to_numpy()
    study = ecgs["group"].to_numpy() == STUDY_GROUP
    control_row = ecgs["ecg_timetag"].to_numpy() == CONTROL_CONTROL
    # Study ECGs lie days_to_event before ROSC; a control's "control" ECG lies its pre ECG's
    # follow-up after the pre ECG (the anchor).
    follow = ecgs.groupby("patient_ngsci_id")["days_to_event"].transform("max").to_numpy()
    offset = np.where(study, -ecgs["days_to_event"], np.where(control_row, follow, 0.0))
    ecgs["acquired"] = pt["anchor"].to_numpy() + _minutes(offset).to_numpy()
    ecgs["rosc"] = pt["anchor"].where(study)
    ecgs.loc[control_row, "days_to_event"] = np.nan
    years_before = np.where(study, ecgs["days_to_event"].fillna(0) / 365.25, -offset / 365.25)
    ecgs["age"] = pt["age_at_anchor"].to_numpy() - years_before
    ecgs["female"] = pt["female"].to_numpy()
    return ecgs


def _assign_faults(ecgs: pd.DataFrame, rng: np.random.Generator, design: CohortDesign) -> None:
    """Columns fault, fault_lead, fault_start (first zero sample of a missing tail, else -1)."""
    n = len(ecgs)
    hit = ecgs["waveform"].to_numpy() & (rng.random(n) < design.fault_fraction)
    kind = rng.choice(FAULTS, size=n)
    ecgs["fault"] = np.where(hit, kind, "")
    lead = rng.choice(LEADS, size=n)
    ecgs["fault_lead"] = np.where(ecgs["fault"] == "flat_lead", lead, "")
    start = rng.integers(2500, 4500, size=n)
    ecgs["fault_start"] = np.where(ecgs["fault"] == "missing_tail", start, -1)


def _place_waveforms(ecgs: pd.DataFrame) -> None:
    """npy_file (relative to the data root) and npy_index per waveform ECG; -1 / "" otherwise."""
    folder = np.where(ecgs["group"] == STUDY_GROUP, STUDY_DIR,
                      CONTROL_DIR + "/" + ecgs["group"].astype(str) + "/pre")
    ecgs["npy_file"] = np.where(ecgs["waveform"], folder + "/" + WAVEFORM_ARRAY, "")
    ecgs["npy_index"] = -1
    for _, rows in ecgs[ecgs["waveform"]].groupby("npy_file", sort=False):
        ecgs.loc[rows.index, "npy_index"] = np.arange(len(rows))


def _plant_odd_rows(ecgs: pd.DataFrame, rng: np.random.Generator, design: CohortDesign) -> None:
    """Column ``odd``: unparsable acquisition datetimes, one out-of-range npy_index, and one
    ECG whose resting-measurements row is duplicated (the writer adds the duplicate)."""
    ecgs["odd"] = ""
    clean = (ecgs["fault"] == "").to_numpy()
    study_pre = np.flatnonzero(clean & (ecgs["ecg_timetag"] == PRE_TAG).to_numpy())
    if study_pre.size < 3:
        raise PipelineError(f"{study_pre.size} fault-free pre-arrest ECGs, need >= 3: raise "
                            "--n-patients or --study-fraction, or lower --fault-fraction")
    n_pre = (ecgs["ecg_timetag"] == PRE_TAG).groupby(ecgs["patient_ngsci_id"]).transform("sum")
    several = study_pre[n_pre.to_numpy()[study_pre] > 1]
    out_of_range = int(rng.choice(several if several.size else study_pre))
    duplicated = int(rng.choice(study_pre[study_pre != out_of_range]))
    ecgs.loc[out_of_range, "odd"] = "npy_index out of range"
    ecgs.loc[duplicated, "odd"] = f"row duplicated in {STUDY_DIR} {RESTING.rsplit('/', 1)[-1]}"
    candidates = np.flatnonzero(clean & (ecgs["odd"] == "").to_numpy()
                                & ecgs["ecg_timetag"].isin([PRE_TAG, CONTROL_PRE]).to_numpy())
    n_bad = max(1, int(round(design.unparsable_datetime_fraction * len(ecgs))))
    bad = rng.choice(candidates, size=min(n_bad, candidates.size), replace=False)
    ecgs.loc[bad, "odd"] = "acquisition datetime unparsable"
    ecgs.loc[bad, "days_to_event"] = np.nan
    # The out-of-range ECG keeps its table rows but no waveform: later rows shift up by one.
    ecgs.loc[out_of_range, "waveform"] = False


def _truth_labels(ecgs: pd.DataFrame) -> None:
    """``selected`` (the ECG x01 keeps per patient) and ``scd1`` (its 1-year SCD label).

    Eligible: study "[0]pre" and control "pre" ECGs with a waveform and a known datetime. Per
    patient the smallest whole-day ``days_to_event`` >= 2 wins, else the smallest overall;
    ties go to the smallest ecg_id.
    """
    days = np.floor(ecgs["days_to_event"])
    eligible = (ecgs["ecg_timetag"].isin([PRE_TAG, CONTROL_PRE]) & ecgs["waveform"]
                & days.notna())
    cand = ecgs.loc[eligible, ["patient_ngsci_id", "ecg_id"]].assign(
        days=days[eligible], late=(days[eligible] < 2).astype(int))
    cand = cand.sort_values(["patient_ngsci_id", "late", "days", "ecg_id"])
    chosen = cand.drop_duplicates("patient_ngsci_id")["ecg_id"]
    ecgs["selected"] = ecgs["ecg_id"].isin(chosen)
    ecgs["scd1"] = (ecgs["cardiac_cause"] & ecgs["ecg_timetag"].eq(PRE_TAG)
                    & days.between(2, 365))


def sample_cohort(n_patients: int, seed: int,
                  design: CohortDesign = CohortDesign()) -> pd.DataFrame:
    """Every synthetic ECG, one row each, with its patient's data, dates, fault, odd note,
    storage place (npy_file, npy_index) and simulation parameters (column ``params``)."""
    if n_patients < 10:
        raise PipelineError(f"--n-patients {n_patients}: need at least 10")
    n_study = int(round(design.study_fraction * n_patients))
    if n_study < 1 or n_patients - n_study < len(CONTROL_YEARS):
        raise PipelineError(
            f"--study-fraction {design.study_fraction:g}: {n_study} of {n_patients} patients in "
            f"the study group and {n_patients - n_study} controls; need at least 1 study patient "
            f"and {len(CONTROL_YEARS)} controls (one per control year)")
    if not 0 <= design.fault_fraction < 1:
        raise PipelineError(f"--fault-fraction {design.fault_fraction:g}: must be below 1 "
                            "(the pipeline needs fault-free ECGs)")
    rng = np.random.default_rng([seed, 0])
    patients = sample_patients(n_patients, rng, design)
    ecgs = sample_ecgs(patients, rng, design)
    _assign_faults(ecgs, rng, design)
    _plant_odd_rows(ecgs, rng, design)
    _place_waveforms(ecgs)
    oor = ecgs["odd"] == "npy_index out of range"
    n_study = int((ecgs["npy_file"] == f"{STUDY_DIR}/{WAVEFORM_ARRAY}").sum())
    ecgs.loc[oor, ["npy_file", "npy_index"]] = [f"{STUDY_DIR}/{WAVEFORM_ARRAY}", n_study + 5]
    _truth_labels(ecgs)
    recorded = ecgs["ecg_timetag"] != CONTROL_CONTROL  # the control ECG itself is only a date
    ecgs["params"] = [
        sample_ecg_params(rng, slur=s, fault=f if f in PARAM_FAULTS else "", age=a) if r else None
        for s, f, a, r in zip(ecgs["slur_strength"], ecgs["fault"], ecgs["age"], recorded)]
    return ecgs


# --------------------------------------------------------------------------------------
# Writing the NTUH tree
# --------------------------------------------------------------------------------------
SATURATION_FRACTION = 0.6   # a saturated lead is clipped at this fraction of its peak |value|
INT16_RANGE = (-32768, 32767)
COMORBIDITIES = ("hypertension", "diabetes_mellitus", "chronic_kidney_disease",
                 "heart_failure", "coronary_artery_disease")


def stored_waveform(p: EcgParams, rng: np.random.Generator, fault: str = "", fault_lead: str = "",
                    fault_start: int = -1) -> np.ndarray:
    """One ECG as NTUH stores it: int16 µV (12, 5000), derived limb leads × NTUH_GAIN_FAULT,
    with the storage fault (flat_lead, saturation, missing_tail) applied."""
    x = simulate_ecg(p, rng)
    x[DERIVED_ROWS] *= NTUH_GAIN_FAULT
    if fault == "flat_lead":
        x[LEAD_INDEX[fault_lead]] = 0.0
    elif fault == "saturation":
        rail = SATURATION_FRACTION * np.abs(x).max(axis=1, keepdims=True)
        x = np.clip(x, -rail, rail)
    elif fault == "missing_tail":
        x[:, fault_start:] = 0.0
    return np.clip(np.rint(x), *INT16_RANGE).astype(np.int16)


def _group_dirs(ecgs: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(folder relative to the data root, its waveform ECGs) for the study and each year."""
    out = [(STUDY_DIR, ecgs[ecgs["group"] == STUDY_GROUP])]
    for year in CONTROL_YEARS:
        out.append((f"{CONTROL_DIR}/{year}/pre",
                    ecgs[(ecgs["group"] == str(year)) & (ecgs["ecg_timetag"] == CONTROL_PRE)]))
    return out


def metadata_tables(ecgs: pd.DataFrame, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """The four ecg-metadata tables for ``ecgs`` (rows with simulation params)."""
    resting, global_, per_lead, diagnosis = [], [], [], []
    for ecg_id, p in zip(ecgs["ecg_id"], ecgs["params"]):
        m = ecg_measurements(p, rng)
        codes = lead_flag_codes(p)
        resting.append({"ecg_id": ecg_id, **{k: m[k] for k in (
            "ventricular_rate", "atrial_rate", "qrs_duration", "qt_interval", "qtc_frederica")}})
        global_.append({"ecg_id": ecg_id, "qtc": m["qtc"], "avg_rr": m["avg_rr"]})
        per_lead += [{"ecg_id": ecg_id, "lead": lead, "stelev": c, "stdown": c, "dltwv": c}
                     for lead, c in zip(LEADS, codes.tolist())]
        diagnosis += [{"ecg_id": ecg_id, "stmt_text": s}
                      for s in diagnosis_statements(p, codes, m["qtc"])]
    return {RESTING: pd.DataFrame(resting), GLOBAL: pd.DataFrame(global_),
            PER_LEAD: pd.DataFrame(per_lead), DIAGNOSIS: pd.DataFrame(diagnosis)}


def _write_metadata(folder: Path, ecgs: pd.DataFrame, rng: np.random.Generator) -> None:
    for name, table in metadata_tables(ecgs, rng).items():
        if name == RESTING:
            noted = ecgs.loc[ecgs["odd"].str.startswith("row duplicated"), "ecg_id"]
            dup = table["ecg_id"].isin(noted)
            if dup.any():
                at = int(np.flatnonzero(dup)[0])
                table = pd.concat([table.iloc[:at + 1], table.iloc[at:]], ignore_index=True)
        write_csv(table, folder / name)


def _datetime_strings(ecgs: pd.DataFrame, times: pd.Series, rng: np.random.Generator) -> np.ndarray:
    out = _format_datetimes(times.reset_index(drop=True), rng)
    out[(ecgs["odd"] == "acquisition datetime unparsable").to_numpy()] = "unknown"
    return out


def write_tables(root: Path, ecgs: pd.DataFrame, seed: int) -> None:
    """Every CSV of the NTUH layout under ``root``."""
    rng = np.random.default_rng([seed, 2])
    ages = _age_strings(ecgs["age"].to_numpy(), rng)
    sexes = np.where(ecgs["female"], "female", "male").astype(object)
    sexes[rng.random(len(ecgs)) < 0.01] = ""
    acquired = _datetime_strings(ecgs, ecgs["acquired"], rng)
    table = ecgs.assign(age_text=ages, sex=sexes, acquisition_datetime_offset=acquired)

    study = table[table["group"] == STUDY_GROUP]
    s_root = root / STUDY_DIR
    write_csv(study[["patient_ngsci_id", "ecg_id", "acquisition_datetime_offset", "ecg_timetag"]],
              s_root / STUDY_ECGS)
    rosc = study["rosc"]
    hospital = rosc - _minutes(rng.uniform(10, 180, len(study)) / 1440.0)
    write_csv(pd.DataFrame({"ecg_id": study["ecg_id"], "age": study["age_text"],
                            "sex": study["sex"],
                            "rosc_datetime_offset":
                                _format_datetimes(rosc.reset_index(drop=True), rng)}),
              s_root / STUDY_COHORT)
    write_csv(pd.DataFrame({"ecg_id": study["ecg_id"],
                            "cause_of_cardiac_arrest": study["cause"],
                            "hospitalization_datetime_offset":
                                _format_datetimes(hospital.reset_index(drop=True), rng),
                            "initial_rhythm": study["initial_rhythm"]}),
              s_root / ROSC_OUTCOMES)
    comorbid = pd.DataFrame({"ecg_id": study["ecg_id"].to_numpy()})
    for k, name in enumerate(COMORBIDITIES):
        comorbid[name] = (rng.random(len(study)) < 0.1 + 0.05 * k).astype(int)
    write_csv(comorbid, s_root / COMORBIDITY_TABLE)

    control = table[table["group"] != STUDY_GROUP]
    write_csv(control[["ecg_id", "patient_ngsci_id", "acquisition_datetime_offset", "ecg_timetag"]]
              .assign(age=control["age_text"], sex=control["sex"]),
              root / CONTROL_COHORT)

    for folder, rows in _group_dirs(table):
        rows = rows[rows["npy_index"] >= 0]
        write_csv(rows[["ecg_id", "npy_index", "ecg_timetag"]], root / folder / WAVEFORM_INDEX)
        _write_metadata(root / folder, rows, rng)


def write_waveforms(root: Path, ecgs: pd.DataFrame, seed: int, chunk_size: int = 256,
                    progress: bool = True) -> None:
    """Each group's stacked int16 ``waveform-rhythm.npy``, streamed to disk chunk by chunk.

    The ``.npy`` header is written first and each chunk appended, so memory stays at one chunk
    whatever the cohort size. ECG ``k`` (row k of ``ecgs``) is simulated with
    ``default_rng([seed, 1, k])``, so the files do not depend on the chunk size.
    """
    stored = ecgs[ecgs["waveform"]]
    dtype = np.dtype("<i2")
    bar = progress_bar(total=len(stored), desc="x00 waveforms", unit="ecg", disable=not progress,
               mininterval=1.0)
    for folder, rows in _group_dirs(stored):
        if not (rows["npy_index"].to_numpy() == np.arange(len(rows))).all():
            raise AssertionError(f"{folder}: npy_index not consecutive")
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                  "shape": (len(rows), N_LEADS, N_SAMPLES)}
        with atomic_path(root / folder / WAVEFORM_ARRAY) as tmp, open(tmp, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            for start in range(0, len(rows), chunk_size):
                chunk = rows.iloc[start:start + chunk_size]
                block = np.empty((len(chunk), N_LEADS, N_SAMPLES), dtype=dtype)
                for i, row in enumerate(chunk.itertuples()):
                    rng = np.random.default_rng([seed, 1, row.Index])
                    block[i] = stored_waveform(row.params, rng, row.fault, row.fault_lead,
                                               row.fault_start)
                fh.write(block.tobytes())
                bar.update(len(chunk))
    bar.close()


TRUTH_COLUMNS = ("ecg_id", "patient_ngsci_id", "group", "ecg_timetag", "slur_strength",
                 "cardiac_cause", "arrest", "cause", "days_to_event", "selected", "scd1",
                 "fault", "fault_lead", "fault_start", "odd", "npy_file", "npy_index")
TRUTH_PARAMS = ("heart_rate", "axis_deg", "qrs_ms", "qt_ms", "noise_uv", "lbbb", "paced")


def truth_table(ecgs: pd.DataFrame) -> pd.DataFrame:
    """The ground truth, one row per ECG (npy_file relative to the data root; -1 / "" for ECGs
    without a waveform). For tests and validation reports only, never for pipeline scripts."""
    truth = ecgs[list(TRUTH_COLUMNS)].copy()
    for name in TRUTH_PARAMS:
        truth[name] = [getattr(p, name) if p is not None else None for p in ecgs["params"]]
    return truth


def write_synthetic_ntuh(data_root: str | Path, n_patients: int, seed: int,
                         design: CohortDesign = CohortDesign(), chunk_size: int = 256,
                         progress: bool = True) -> pd.DataFrame:
    """Write the full NTUH layout under ``data_root`` and ``synthetic_truth.csv`` beside it.

    Returns the truth table. The same arguments give byte-identical files.

    The tree is built in a hidden folder beside ``data_root`` and swapped into place when
    complete, so an interrupted run leaves the previous tree (or none), never a mix. An
    existing ``data_root`` is replaced only if x00 wrote it (its :data:`SYNTHETIC_MARKER`
    says so; a :data:`TRUTH_FILE` beside it proves nothing, since any folder may hold one),
    so real data can never be overwritten.
    """
    root = Path(data_root)
    marker = root / SYNTHETIC_MARKER
    made_by_x00 = marker.is_file() and marker.read_bytes().startswith(
        SYNTHETIC_MARKER_PREFIX.encode())
    if root.exists() and not made_by_x00 and (not root.is_dir() or any(root.iterdir())):
        raise PipelineError(f"{root}: exists and was not written by x00 (no {SYNTHETIC_MARKER} "
                            "file); refusing to replace it (choose another --data-root or "
                            "remove it yourself)")
    ecgs = sample_cohort(n_patients, seed, design)

    def fill(tmp: Path) -> None:
        write_tables(tmp, ecgs, seed)
        write_waveforms(tmp, ecgs, seed, chunk_size=chunk_size, progress=progress)
        write_text(f"{SYNTHETIC_MARKER_PREFIX}{n_patients} patients, seed {seed}\n",
                   tmp / SYNTHETIC_MARKER)

    remove_leftovers(root.parent, root.name)  # what an interrupted earlier run left beside it
    replace_dir(root, fill)
    truth = truth_table(ecgs)
    write_csv(truth, root.parent / TRUTH_FILE)
    return truth
