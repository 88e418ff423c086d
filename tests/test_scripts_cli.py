"""Every numbered script: ``--help`` works and each simple top-level constant is an option."""
from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for folder in ("00_Data_Preprocessing", "01_Predictive_Model", "02_Morphing")
                 for p in (ROOT / folder).glob("[xs][0-9][0-9]_*.py"))


def simple_constants(path: Path) -> list[str]:
    """UPPER_CASE module-level names bound to a literal str/int/float/bool (or list of them)."""
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.AnnAssign):
            targets, value = [node.target], node.value
        elif isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        else:
            continue
        for target in targets:
            if not (isinstance(target, ast.Name) and target.id.isupper() and value is not None):
                continue
            try:
                literal = ast.literal_eval(value)
            except ValueError:
                continue
            items = literal if isinstance(literal, (list, tuple)) else [literal]
            if all(isinstance(v, (str, int, float, bool)) for v in items):
                names.append(target.id)
    return names


def help_text(path: Path) -> str:
    spec = importlib.util.spec_from_file_location(f"script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    return buffer.getvalue()


#: The scripts the authors' README names: their names are the project's fixed interface.
AUTHORS_SCRIPTS = (
    "00_Data_Preprocessing/x01_build_ntuh_df.py", "00_Data_Preprocessing/x02_generate_dummy_columns.py",
    "00_Data_Preprocessing/x03_process_10sec_ecg.py", "00_Data_Preprocessing/x04_segment_beats.py",
    "00_Data_Preprocessing/x05_create_morphing_beats.py",
    "00_Data_Preprocessing/x06_create_aVL_feature.py",
    "00_Data_Preprocessing/x07_run_ntuh_style_regression.py", "00_Data_Preprocessing/x08_plot_ecg.py",
    "01_Predictive_Model/x01_train_10s_ecg.py", "01_Predictive_Model/x02_train_beats.py",
    "01_Predictive_Model/x03_predict.py",
    "02_Morphing/s08_train_generator.py", "02_Morphing/s10_morph_ecgs.py", "02_Morphing/s12_morph_stats.py",
)


#: Scripts of this project beside the authors' ones (synthetic data, import, ensemble, ...).
OWN_SCRIPTS = (
    "00_Data_Preprocessing/x00_import_cohort.py", "00_Data_Preprocessing/x00_make_synthetic_ntuh.py",
    "01_Predictive_Model/x04_train_ensemble.py", "01_Predictive_Model/x05_evaluate.py",
    "02_Morphing/s09_reconstruction_report.py", "02_Morphing/s11_prepare_morph_stats.py",
)


def test_the_authors_scripts_exist_under_their_names():
    found = {f"{p.parent.name}/{p.name}" for p in SCRIPTS}
    assert found == set(AUTHORS_SCRIPTS) | set(OWN_SCRIPTS)     # none missing, none unlisted
    # one name per step: no alias or wrapper beside a renamed script
    stems = [p.stem for p in SCRIPTS]
    assert len(stems) == len(set(stems)), stems
    for old in ("x03_extract_10s_ecgs", "x05_morphing_beats", "x06_avl_features", "x07_association",
                "x04_evaluate"):
        assert old not in stems


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_help_lists_every_constant(path):
    text = help_text(path)
    missing = [name for name in simple_constants(path)
               if "--" + name.lower().replace("_", "-") not in text]
    assert not missing, f"{path.name}: constants without a command-line option: {missing}"
