"""The shared core: atomic writes, checked reads, checkpoints, CLI, signal primitives."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from scdecg import cli, io, signals
from scdecg.errors import PipelineError, script_main
from scdecg.failures import FailureLog


def test_atomic_path_leaves_old_file_when_writer_fails(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half-written")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]  # no temp left behind


def test_feather_roundtrip_and_missing_column_is_named(tmp_path):
    df = pd.DataFrame({"studyId": ["a", "b"], "x": [1.0, np.nan]})
    io.write_feather(df, tmp_path / "df.feather")
    back = io.read_feather(tmp_path / "df.feather", columns=["studyId", "x"])
    pd.testing.assert_frame_equal(back, df)
    with pytest.raises(PipelineError, match=r"df\.feather: missing column\(s\) age, sex"):
        io.read_feather(tmp_path / "df.feather", columns=["studyId", "age", "sex"])
    with pytest.raises(PipelineError, match="nope.feather: file not found"):
        io.read_feather(tmp_path / "nope.feather")


def test_save_npy_refuses_object_arrays(tmp_path):
    io.save_npy(np.arange(6, dtype=np.float32).reshape(2, 3), tmp_path / "a.npy")
    assert io.load_npy(tmp_path / "a.npy").tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(ValueError):
        io.save_npy(np.array([{"a": 1}], dtype=object), tmp_path / "b.npy")
    assert not (tmp_path / "b.npy").exists()


def test_checkpoint_roundtrip_loads_with_weights_only(tmp_path):
    state = {"w": torch.arange(4.0), "nested": {"b": torch.ones(2)}}
    io.save_checkpoint(tmp_path / "m.pt", {"state": state, "epoch": 3}, {"channels": 8})
    raw = torch.load(tmp_path / "m.pt", weights_only=True)  # must not need pickle
    assert json.loads(raw["config_json"]) == {"channels": 8}
    tensors, config = io.load_checkpoint(tmp_path / "m.pt")
    assert config == {"channels": 8} and tensors["epoch"] == 3
    assert torch.equal(tensors["state"]["nested"]["b"], torch.ones(2))


def test_load_checkpoint_rejects_foreign_and_corrupt_files(tmp_path):
    torch.save({"w": torch.ones(1)}, tmp_path / "foreign.pt")
    with pytest.raises(PipelineError, match="not a scdecg checkpoint"):
        io.load_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "corrupt.pt").write_bytes(b"\x00garbage")
    with pytest.raises(PipelineError, match="corrupt.pt: cannot load checkpoint"):
        io.load_checkpoint(tmp_path / "corrupt.pt")


def test_build_parser_turns_constants_into_typed_options():
    parser = cli.build_parser("Doc.", data_root="a/b", n_jobs=2, rate=0.5, plot=True,
                              outputs=["scd1", "scd2"], name=None)
    args = parser.parse_args(["--n-jobs", "3", "--rate", "0.25", "--no-plot",
                              "--outputs", "scd3mo", "--data-root", "x"])
    assert (args.n_jobs, args.rate, args.plot, args.outputs, args.data_root, args.name) == \
        (3, 0.25, False, ["scd3mo"], "x", None)
    defaults = parser.parse_args([])
    assert (defaults.n_jobs, defaults.plot, defaults.outputs) == (2, True, ["scd1", "scd2"])


def test_a_second_spelling_sets_the_same_option():
    parser = cli.build_parser("Doc.", spellings={"model_name": "--model_name", "beat": "--in_beat"},
                              model_name="m", beat=False)
    assert parser.parse_args(["--model_name", "a"]).model_name == "a"
    assert parser.parse_args(["--model-name", "b"]).model_name == "b"
    assert parser.parse_args(["--in_beat"]).beat is True
    assert parser.parse_args(["--model_name", "a", "--model-name", "c"]).model_name == "c"
    with pytest.raises(ValueError, match="do not exist"):
        cli.build_parser("Doc.", spellings={"absent": "--absent"}, model_name="m")


def test_script_parser_layers_constants_runs_profiles_and_the_command_line(capsys):
    constants = {"model_name": "m", "epochs": 100, "lr": 1e-4, "outputs": ["scd1"], "seed": 0}
    runs = {"scd": {}, "low-ef": {"model_name": "m_low_ef", "outputs": ["low_ef"], "lr": 1e-3}}
    profiles = {"paper": {}, "demo": {"epochs": 3, "lr": 2e-3}}

    def parse(argv):
        return cli.script_parser("Doc.", constants, argv, profiles=profiles,
                                 runs=runs).parse_args(argv)

    paper = parse([])
    assert (paper.model_name, paper.epochs, paper.lr, paper.profile, paper.run, paper.device) \
        == ("m", 100, 1e-4, "paper", "scd", "auto")
    low_ef_demo = parse(["--run", "low-ef", "--profile", "demo"])
    # the profile overrides the run, the run the constants
    assert (low_ef_demo.model_name, low_ef_demo.outputs, low_ef_demo.epochs, low_ef_demo.lr) \
        == ("m_low_ef", ["low_ef"], 3, 2e-3)
    # the command line overrides everything, in any order
    assert parse(["--epochs", "7", "--profile", "demo"]).epochs == 7
    # --help shows what will run under the chosen profile
    with pytest.raises(SystemExit):
        parse(["--profile", "demo", "--help"])
    text = capsys.readouterr().out
    assert "--epochs EPOCHS       (default: 3)" in text and "(default: 0.002)" in text
    with pytest.raises(ValueError, match=r"profile 'demo' sets values that are no constant: \['epoch'\]"):
        cli.script_parser("Doc.", constants, [], profiles={"paper": {}, "demo": {"epoch": 3}})


def test_script_constants_are_the_scripts_own_simple_assignments(tmp_path):
    script = tmp_path / "x99_example.py"
    script.write_text("from os import SEEK_END\nfrom pathlib import Path\n"
                      "N_JOBS = 2\nNAMES: list = ['a', 'b']\nROOT = Path('x')\n"
                      "HELP = {'n_jobs': 'workers'}\n_PRIVATE = 1\nlower = 3\nEMPTY = None\n")
    namespace: dict = {"__file__": str(script)}
    exec(compile(script.read_text(), str(script), "exec"), namespace)
    # imported, private, lower-case, dict and Path values are no options
    assert cli.script_constants(namespace) == {"n_jobs": 2, "names": ["a", "b"], "empty": None}


def test_script_main_turns_pipeline_error_into_exit_2(capsys):
    @script_main
    def main():
        raise PipelineError("cohort.csv: missing column age")

    assert main() == 2
    assert capsys.readouterr().err.strip() == "error: cohort.csv: missing column age"


def test_seed_everything_reproduces_numpy_and_torch():
    cli.seed_everything(5)
    a = (np.random.rand(3), torch.rand(3))
    cli.seed_everything(5)
    b = (np.random.rand(3), torch.rand(3))
    assert np.array_equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_resolve_device():
    assert cli.resolve_device("cpu").type == "cpu"
    assert cli.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(PipelineError, match="no CUDA device"):
            cli.resolve_device("cuda")


def test_zero_mode_uses_each_leads_own_mode():
    x = np.zeros((3, 100), dtype=np.float32)
    x[0] += 0.2
    x[1] += -0.5
    x[2, :60] = 1.0  # mode 1.0, with a 40-sample excursion
    x[2, 60:] = np.linspace(2, 3, 40)
    out = signals.zero_mode(x)
    np.testing.assert_allclose(out[0], 0, atol=1e-6)
    np.testing.assert_allclose(out[1], 0, atol=1e-6)
    np.testing.assert_allclose(out[2, :60], 0, atol=1e-6)
    assert out.dtype == np.float32


def test_zero_median_cut_pad_and_preprocess():
    x = np.array([[1.0, 2.0, 9.0], [0.0, 0.0, 3.0]])
    np.testing.assert_allclose(signals.zero_median(x), [[-1, 0, 7], [0, 0, 3]])
    assert signals.right_pad(x, 5).shape == (2, 5) and signals.right_pad(x, 5)[0, 4] == 0
    assert signals.fit_length(x, 2).tolist() == [[1, 2], [0, 0]]
    with pytest.raises(ValueError, match="only 3 samples"):
        signals.cut(x, 3, start=1)
    rng = np.random.default_rng(0)
    assert signals.random_cut(np.arange(10)[None], 4, rng).shape == (1, 4)
    with pytest.raises(ValueError, match="unknown preprocessing step 'smooth'"):
        signals.preprocess(x, ["smooth"])


def test_failure_log_counts_by_reason():
    log = FailureLog("x04")
    log.add("e1", "flat signal")
    log.add("e2", "flat signal")
    log.add("e3", "contains NaN")
    assert log.counts() == {"flat signal": 2, "contains NaN": 1}
    text = log.summary(total=10)
    assert "3 record(s) excluded or failed of 10" in text
    assert text.index("flat signal") < text.index("contains NaN")


def test_atomic_files_get_the_usual_mode(tmp_path):
    import os

    io.write_text("x", tmp_path / "a.txt")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_replace_dir_swaps_whole_folders_and_removes(tmp_path):
    target = tmp_path / "beats"
    io.replace_dir(target, lambda d: (d / "old.npy").write_text("1"))
    io.replace_dir(target, lambda d: (d / "new.npy").write_text("2"))
    assert sorted(p.name for p in target.iterdir()) == ["new.npy"]
    with pytest.raises(RuntimeError):
        io.replace_dir(target, lambda d: (_ for _ in ()).throw(RuntimeError("killed")))
    assert sorted(p.name for p in target.iterdir()) == ["new.npy"]  # old content kept
    io.replace_dir(target, None)
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_equal_checkpoints_are_equal_bytes(tmp_path):
    """torch.save to a path names the archive's inner folder after the file: through our
    random temporary name, two saves of the same tensors differed byte for byte."""
    import torch

    from scdecg.io import save_checkpoint

    saved = []
    for _ in range(2):
        save_checkpoint(tmp_path / "best.pt", {"w": torch.arange(5.0)}, {"epoch": 3})
        saved.append((tmp_path / "best.pt").read_bytes())
    assert saved[0] == saved[1]


def test_a_symlink_loop_is_one_line_not_a_traceback(tmp_path, capsys):
    """pathlib (before Python 3.13) raises RuntimeError for a loop: s08 --output-dir loopA."""
    from scdecg.errors import script_main

    (tmp_path / "loopA").symlink_to(tmp_path / "loopB")
    (tmp_path / "loopB").symlink_to(tmp_path / "loopA")

    @script_main
    def main():
        (tmp_path / "loopA" / "drvae").resolve(strict=True)

    assert main() == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "loopA" in err and err.startswith("error: ")
