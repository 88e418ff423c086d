"""The authors' README, followed as a new user would: its 15 commands, exactly as written, from a
folder laid out as the repository root with the NTUH data at ``arrest-ntuh-ecg/v1``.

The commands come from the authors' README as kept beside the repository
(``../shared/spec/authors-readme.md``) when it is there, else from the copy below, which must
then agree with it. Training and morphing get only options that shorten them (the demo profile,
epoch, beat and step counts); every other command runs word for word. Then every output the
README names must exist where it says.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
README_CANDIDATES = [ROOT.parent / "shared" / "spec" / "authors-readme.md",
                     ROOT.parents[1] / "shared" / "spec" / "authors-readme.md"]

#: The command block of the authors' README (used when the README itself is not beside us).
AUTHORS_COMMANDS = """
python 00_Data_Preprocessing/x01_build_ntuh_df.py
python 00_Data_Preprocessing/x02_generate_dummy_columns.py
python 00_Data_Preprocessing/x03_process_10sec_ecg.py
python 00_Data_Preprocessing/x04_segment_beats.py
python 00_Data_Preprocessing/x05_create_morphing_beats.py
python 00_Data_Preprocessing/x06_create_aVL_feature.py
python 00_Data_Preprocessing/x07_run_ntuh_style_regression.py
python 00_Data_Preprocessing/x07_run_ntuh_style_regression.py --filter-mode all
python 01_Predictive_Model/x01_train_10s_ecg.py
python 01_Predictive_Model/x02_train_beats.py
python 01_Predictive_Model/x03_predict.py --model_name ntuh_scd_model_demo --covariate_df_path covariate_df.feather --ecg_dir 10_sec_ecgs
python 01_Predictive_Model/x03_predict.py --model_name ntuh_scd_beat_model_demo --covariate_df_path covariate_df.feather --ecg_dir ecg_beats --beat
python 02_Morphing/s08_train_generator.py
python 02_Morphing/s10_morph_ecgs.py
python 02_Morphing/s12_morph_stats.py
"""

#: The only additions allowed: options that make training and morphing short.
SHORTEN = {
    "01_Predictive_Model/x01_train_10s_ecg.py": ["--profile", "demo", "--min-epochs", "1",
                                                 "--max-epochs", "1"],
    # the demo's own 10 epochs: with a few batches per epoch, fewer leave the batch-norm
    # statistics so far from the data that every beat gets the same risk, and then no beat
    # can be morphed
    "01_Predictive_Model/x02_train_beats.py": ["--profile", "demo"],
    "02_Morphing/s08_train_generator.py": ["--profile", "demo", "--epochs", "1",
                                           "--max-beats", "64"],
    # a 1-epoch generator draws nearly one beat for all, with a risk above any stop level: no
    # stop, so each of the 8 beats takes its 20 steps
    "02_Morphing/s10_morph_ecgs.py": ["--profile", "demo", "--n-beats", "8", "--max-steps", "20",
                                      "--no-stop"],
}
N_PATIENTS = "120"
SCRIPT_FOLDERS = ("00_Data_Preprocessing", "01_Predictive_Model", "02_Morphing")


def readme_commands(text: str) -> list[list[str]]:
    """The ``python ...`` lines of the README's command block, comments removed."""
    if "## Commands, in order" in text:
        text = text.split("## Commands, in order", 1)[1]
        text = re.search(r"```[a-z]*\n(.*?)```", text, re.S).group(1)
    return [shlex.split(line.split("#", 1)[0]) for line in text.splitlines()
            if line.strip().startswith("python ")]


def authors_commands() -> list[list[str]]:
    embedded = readme_commands(AUTHORS_COMMANDS)
    for path in README_CANDIDATES:
        if path.exists():
            published = readme_commands(path.read_text())
            assert published == embedded, f"the copy in this test differs from {path}"
            return published
    return embedded


def test_the_readme_copy_parses_to_the_15_commands():
    commands = authors_commands()
    assert len(commands) == 15
    assert all(words[0] == "python" and (ROOT / words[1]).is_file() for words in commands)
    assert set(SHORTEN) <= {words[1] for words in commands}


@pytest.fixture(scope="module")
def repo_root(tmp_path_factory) -> tuple[Path, list[str]]:
    """A folder laid out as the repository root, with the synthetic NTUH tree, in which the
    authors' commands ran in order; returns it and the failure of the first command that
    failed (later commands, which need its outputs, are not run)."""
    root = tmp_path_factory.mktemp("authors_readme")
    for folder in SCRIPT_FOLDERS:
        (root / folder).symlink_to(ROOT / folder, target_is_directory=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1", TQDM_DISABLE="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                        os.environ.get("PYTHONPATH")])))

    def run(words: list[str]) -> str | None:
        proc = subprocess.run([sys.executable, *words], cwd=root, env=env, capture_output=True,
                              text=True, timeout=600)
        if proc.returncode == 0:
            return None
        return (f"`{shlex.join(['python', *words])}` exited {proc.returncode}\n"
                f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")

    failed = run(["00_Data_Preprocessing/x00_make_synthetic_ntuh.py", "--data-root",
                  "arrest-ntuh-ecg/v1", "--n-patients", N_PATIENTS, "--seed", "3"])
    for words in authors_commands():
        if failed:
            break
        failed = run([*words[1:], *SHORTEN.get(words[1], [])])
    return root, [failed] if failed else []


def test_every_command_of_the_readme_runs_as_written(repo_root):
    _, failures = repo_root
    assert not failures, failures[0]


def test_preprocessing_outputs_are_where_the_readme_says(repo_root):
    repo_root, _ = repo_root
    cov = pd.read_feather(repo_root / "covariate_df.feather")
    assert {"aVL_rs_diff", "aVL_rs_diff_2", "scd3mo", "scd6mo", "scd1", "scd2"} <= set(cov.columns)
    assert cov["aVL_rs_diff"].notna().mean() > 0.8
    ids = set(cov["studyId"].astype(str))
    ten_sec = {p.stem for p in (repo_root / "10_sec_ecgs").glob("*.npy")}
    assert ten_sec <= ids and len(ten_sec) >= 0.9 * len(ids)
    x = np.load(repo_root / "10_sec_ecgs" / f"{sorted(ten_sec)[0]}.npy")
    assert x.shape == (12, 5000)
    beats = list((repo_root / "ecg_beats").rglob("*.npy"))
    assert len(beats) > 5 * len(ten_sec) // 2
    assert all(re.fullmatch(rf"{re.escape(b.parent.name)}_\d+\.npy", b.name) and
               b.parent.name in ids for b in beats)
    assert (repo_root / "ecg_beats_morphing" / "x05_waterfall_table_results.csv").exists()
    assert any((repo_root / "ecg_beats_morphing").rglob("*.npy"))
    # x07's two commands: the case-control results and, beside them, those of every record
    casecontrol = pd.read_csv(repo_root / "x07_regression_results.csv")
    every = pd.read_csv(repo_root / "x07_regression_results_all.csv")
    assert set(casecontrol["filter_mode"]) == {"casecontrol"} and set(every["filter_mode"]) == {"all"}


def test_models_and_predictions_are_where_the_readme_says(repo_root):
    repo_root, _ = repo_root
    for kind, name in (("ecg", "ntuh_scd_model_demo"), ("beat", "ntuh_scd_beat_model_demo")):
        folder = repo_root / f"modelfits_{kind}" / name
        assert (folder / "config.json").exists() and any(folder.glob("*.pt")), folder
        pred = pd.read_feather(repo_root / "predictions" / f"{name}_1" / "predictions.feather")
        assert {"studyId", "scd1_hat", "scd2_hat"} <= set(pred.columns) and len(pred) > 0
        assert np.isfinite(pred["scd1_hat"]).all() and not pred["in_sample"].any()
        if kind == "beat":
            assert pred["filename"].str.fullmatch(r".+_\d+\.npy").all()


def test_morphing_outputs_are_where_the_readme_says(repo_root):
    repo_root, _ = repo_root
    out = repo_root / "morphing_outputs"
    assert out.is_dir()
    stats = pd.read_feather(out / "morph-stats.feather")
    assert {"beat_id", "stage", "yhat_scd1", "aVL_rs_diff"} <= set(stats.columns)
    assert {"t0", "final"} <= set(stats["stage"])
    assert (out / "morph-summary.csv").exists()
