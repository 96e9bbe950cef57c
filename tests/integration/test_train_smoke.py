"""Smoke test of the trainer end to end: simulate ~2,000 objects, train 2 epochs (resumed after 1),
evaluate, export, and reload the artifact exactly as the service does.

Also covers: the grid (a reduced, filtered grid with its Table 2 summary and findings, skipped runs
on a re-run), ``evaluate`` reproducing the stored split, atomic export, and tensor parity between
the trainer and ``lightcurve`` preprocessing with the exported artifact's specs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lightcurve.cli import main
from lightcurve.context import GalaxyCatalog, galactic_lb
from lightcurve.metadata import load_metadata
from lightcurve.preprocessing import context_vector, sequence_input_from_detections
from lightcurve.types import Detection
from trainer.training import read_history

pytestmark = pytest.mark.slow

N_OBJECTS = 2000
FILES = ("model.keras", "metadata.json", "metrics.json", "split.json", "training_log.csv", "report/README.md")


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    assert main(["simulate", "--out", str(out), "--n-objects", str(N_OBJECTS), "--seed", "7"]) == 0
    return out


@pytest.fixture(scope="module")
def trained(sim_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("train")
    out, work = root / "model", root / "work"
    cmd = [
        "train",
        "--data",
        str(sim_dir),
        "--out",
        str(out),
        "--work-dir",
        str(work),
        "--fast",
        "--tsne-points",
        "120",
    ]
    assert main([*cmd, "--epochs", "1"]) == 0
    first = {
        "state": json.loads((work / "state.json").read_text()),
        "history": read_history(work / "history.csv"),
        "metadata": load_metadata(out),
    }
    assert main(cmd) == 0  # --fast: 2 epochs; must resume after epoch 1
    return {"root": root, "out": out, "work": work, "first": first}


def test_second_run_resumes_at_epoch_2(trained):
    first, work = trained["first"], trained["work"]
    assert first["state"]["completed_epochs"] == 1
    state = json.loads((work / "state.json").read_text())
    history = read_history(work / "history.csv")
    assert state["completed_epochs"] == 2
    assert [row["epoch"] for row in history] == [1.0, 2.0]
    # Epoch 1 was not re-run: its row (loss and wall time) is the first run's, byte for byte.
    assert history[0] == first["history"][0]
    assert len(read_history(trained["out"] / "training_log.csv")) == 2


def test_model_directory_is_complete(trained):
    out = trained["out"]
    for name in FILES:
        assert (out / name).is_file(), name
    metadata = load_metadata(out)
    assert metadata.training["epochs_completed"] == 2
    assert metadata.sequence.normalisation is not None and metadata.context.normalisation is not None
    assert metadata.context.dummy_host_sep_arcsec == 100.0
    assert metadata.layers.rnn == ("rnn_1", "rnn_2")
    assert any("normalis" in d for d in metadata.training["departures_from_paper"])
    metrics = json.loads((out / "metrics.json").read_text())
    test = metrics["test"]
    assert 0.0 <= test["auc"] <= 1.0 and 0.0 <= test["f1_macro"] <= 1.0
    split = json.loads((out / "split.json").read_text())
    assert np.sum(test["confusion"]["counts"]) == test["n_objects"] == split["test"]["n_objects"]
    assert sum(split[s]["n_objects"] for s in ("train", "validation", "test")) == metadata.data["n_objects"]
    assert set(test["threshold_table"]) == {"VS", "SN", "AGN"}
    assert test["threshold_table"]["SN"]["threshold"] == 0.7
    assert [r["n_obs"] for r in metrics["by_n_obs"]] == list(range(1, 31))
    assert set(metrics["confusion_at_n_obs"]) == {"1", "6", "20"}
    assert set(metrics["tsne"]["layers"]) == {"rnn_2", "dense_2"}
    assert len(metrics["tsne"]["layers"]["dense_2"]) == metrics["tsne"]["n_points"] <= 120
    assert len(metrics["history"]) == 2
    report = (out / "report" / "README.md").read_text()
    for png in (
        "confusion.png",
        "roc.png",
        "auc_vs_nobs.png",
        "confusion_nobs.png",
        "tsne.png",
        "training_curves.png",
    ):
        assert f"({png})" in report and (out / "report" / png).stat().st_size > 1000
    assert "Do the paper's findings hold here?" in report and "Verdict:" in report
    assert not list(trained["root"].glob(".model.*")), "temporary export directories left behind"


def _detections_of(sim_dir: Path, object_ids: list[str]) -> dict[str, list[Detection]]:
    det = pd.read_parquet(sim_dir / "detections.parquet")
    det = det[det["object_id"].isin(object_ids)].sample(frac=1.0, random_state=3)  # arrival order: any
    out: dict[str, list[Detection]] = {oid: [] for oid in object_ids}
    for r in det.itertuples():
        out[r.object_id].append(
            Detection(
                object_id=r.object_id,
                detection_id=r.detection_id,
                mjd=r.mjd,
                mag=r.mag,
                mag_err=r.mag_err,
                filter=r.filter,
            )
        )
    return out


def _host_sep(sim_dir: Path, objects: pd.DataFrame) -> np.ndarray:
    if "host_sep_arcsec" in objects:
        return objects["host_sep_arcsec"].to_numpy(dtype=float)
    galaxies = pd.read_parquet(sim_dir / "galaxies.parquet")
    return GalaxyCatalog(galaxies["ra"], galaxies["dec"]).nearest_separation_arcsec(
        objects["ra"], objects["dec"]
    )


def test_trainer_tensors_equal_lightcurve_with_artifact_spec(trained, sim_dir):
    from trainer.data import CLASS_NAMES, load_tables
    from trainer.dataset import prepare_for_artifact

    metadata = load_metadata(trained["out"])
    data = prepare_for_artifact(load_tables(sim_dir), metadata.sequence, metadata.context, CLASS_NAMES, None)
    objects = pd.read_parquet(sim_dir / "objects.parquet")
    # A few of each class, including the longest light curve (truncation to 30 steps).
    picks = [
        *objects.groupby("label").head(3)["object_id"],
        data.inputs.object_ids[int(np.argmax(data.inputs.n_valid))],
    ]
    dets = _detections_of(sim_dir, list(picks))
    row_of = {oid: i for i, oid in enumerate(data.inputs.object_ids)}
    obj = objects.set_index("object_id").loc[list(picks)].reset_index()
    l_deg, b_deg = galactic_lb(obj["ra"].to_numpy(), obj["dec"].to_numpy())
    seps = _host_sep(sim_dir, obj)
    for k, oid in enumerate(picks):
        expected = sequence_input_from_detections(dets[oid], metadata.sequence)
        np.testing.assert_array_equal(data.inputs.series[row_of[oid]], expected.values)
        sep = None if not np.isfinite(seps[k]) else float(seps[k])
        np.testing.assert_allclose(
            data.inputs.context[row_of[oid]],
            context_vector(float(l_deg[k]), float(b_deg[k]), sep, metadata.context),
            rtol=0,
            atol=1e-6,
        )


SERVICE_LOADER = textwrap.dedent("""
    import json, sys
    import keras, numpy as np, pandas as pd
    from lightcurve.metadata import load_metadata
    from lightcurve.preprocessing import context_matrix, sequence_input
    from lightcurve.context import galactic_lb

    model_dir, sim_dir = sys.argv[1], sys.argv[2]
    model = keras.models.load_model(model_dir + "/model.keras", compile=False)
    meta = load_metadata(model_dir)
    det = pd.read_parquet(sim_dir + "/detections.parquet")
    obj = pd.read_parquet(sim_dir + "/objects.parquet").head(8)
    series = np.stack([
        sequence_input(g.mjd, g.mag, g.mag_err, meta.sequence, list(g.detection_id)).values
        for oid in obj.object_id for g in [det[det.object_id == oid]]
    ])
    l, b = galactic_lb(obj.ra.to_numpy(), obj.dec.to_numpy())
    sep = obj["host_sep_arcsec"].to_numpy() if "host_sep_arcsec" in obj else np.full(len(obj), np.nan)
    inputs = {"time_series": series}
    if meta.context.enabled:
        inputs["context"] = context_matrix(l, b, sep, meta.context)
    probs = model.predict(inputs, verbose=0)
    print(json.dumps({"probs": probs.tolist(), "classes": list(meta.class_names),
                      "trainer_imported": any(m.startswith("trainer") for m in sys.modules)}))
""")


def test_artifact_reloads_like_the_service(trained, sim_dir):
    proc = subprocess.run(
        [sys.executable, "-c", SERVICE_LOADER, str(trained["out"]), str(sim_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    probs = np.asarray(result["probs"])
    assert result["trainer_imported"] is False  # no custom code needed to load the artifact
    assert result["classes"] == ["VS", "SN", "AGN"]
    assert probs.shape == (8, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(probs >= 0)


def test_evaluate_reproduces_the_stored_split(trained, sim_dir, tmp_path):
    report = tmp_path / "report"
    rc = main(
        [
            "evaluate",
            "--model",
            str(trained["out"]),
            "--data",
            str(sim_dir),
            "--out",
            str(report),
            "--tsne-points",
            "0",
        ]
    )
    assert rc == 0
    again = json.loads((report / "metrics.json").read_text())
    original = json.loads((trained["out"] / "metrics.json").read_text())
    assert again["test"]["n_objects"] == original["test"]["n_objects"]
    assert again["test"]["confusion"]["counts"] == original["test"]["confusion"]["counts"]
    assert again["test"]["auc"] == pytest.approx(original["test"]["auc"], abs=1e-9)
    assert (report / "README.md").is_file()


def _two_class_set(sim_dir: Path, out: Path) -> Path:
    """The simulated set without its AGN, as CSV with a second band on every other detection."""
    objects = pd.read_parquet(sim_dir / "objects.parquet")
    objects = objects[objects["label"] != "AGN"]
    detections = pd.read_parquet(sim_dir / "detections.parquet")
    detections = detections[detections["object_id"].isin(objects["object_id"])].copy()
    detections["filter"] = np.where(np.arange(len(detections)) % 2 == 0, "L", "R")
    out.mkdir()
    objects.to_csv(out / "objects.csv", index=False)
    detections.drop(columns="detection_id").to_csv(out / "detections.csv", index=False)
    return out


def test_evaluate_on_two_classes_with_an_adapter_reports_undefined_numbers(trained, sim_dir, tmp_path):
    data = _two_class_set(sim_dir, tmp_path / "vs_sn")
    report = tmp_path / "report"
    args = ["evaluate", "--model", str(trained["out"]), "--data", str(data), "--split", "all"]
    assert main(args) == 2  # foreign data without --out would overwrite the model's own metrics
    assert main([*args, "--bands", "L", "--bin", "night", "--out", str(report), "--tsne-points", "0"]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    test = metrics["test"]
    assert test["classes_present"] == ["VS", "SN"] and test["class_counts"]["AGN"] == 0
    assert test["auc"] is not None and 0.0 <= test["auc"] <= 1.0
    assert test["recall"]["AGN"] is None and test["auc_one_vs_rest"]["AGN"] is None
    adapter = metrics["evaluated_data"]["provenance"]["adapter"]
    assert adapter["adapter"]["bands"] == ["L"] and adapter["adapter"]["binning"] == "night"
    assert adapter["detections_selected"] < adapter["detections_in"]
    text = (report / "README.md").read_text()
    assert "## Data evaluated" in text and str(data) in text and "bands L" in text
    assert "Verdict: the finding" in text and "Rule: holds if" in text
    assert "AGN 0" in text  # the objects scored per class, the empty class included


def test_failed_export_keeps_the_previous_artifact(trained):
    import keras

    from trainer.export import export_model_dir

    out = trained["out"]
    before = (out / "metadata.json").read_bytes()
    model = keras.models.load_model(out / "model.keras", compile=False)
    with pytest.raises(KeyError):
        export_model_dir(out, model=model, metadata=load_metadata(out), metrics={"incomplete": True})
    assert (out / "metadata.json").read_bytes() == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".model.tmp")]


def test_reduced_grid_summary_and_skip_on_rerun(sim_dir, tmp_path):
    runs = tmp_path / "runs"
    cmd = [
        "grid",
        "--data",
        str(sim_dir),
        "--out",
        str(runs),
        "--fast",
        "--reduced",
        "--epochs",
        "1",
        "--only",
        "gru-ce,gru-focal,gru-focal-nc",
        "--tsne-points",
        "60",
    ]
    assert main(cmd) == 0
    results = json.loads((runs / "results.json").read_text())
    assert {r["family"] for r in results["runs"]} == {"gru-ce", "gru-focal", "gru-focal-nc"}
    assert set(results["best"]) == {"gru-ce", "gru-focal", "gru-focal-nc"}
    findings = {f["id"]: f for f in results["comparison"]["findings"]}
    assert {"gru-focal-vs-ce", "context-vs-no-context", "f1-favours-unweighted"} <= set(findings)
    ctx = findings["context-vs-no-context"]
    delta = ctx["values"]["auc"]["context"] - ctx["values"]["auc"]["no_context"]
    assert ctx["reproduced"] == (None if abs(delta) < 0.005 else delta > 0)
    report = (runs / "report" / "README.md").read_text()
    verdict = {True: "**Reproduced.**", False: "**Not reproduced.**", None: "**Inconclusive.**"}[
        ctx["reproduced"]
    ]
    assert f"{verdict} GRU focal: the model with context" in report
    assert "(compare_tsne.png)" in report and (runs / "report" / "compare_tsne.png").is_file()
    assert "| gru-focal-nc |" in (runs / "results.md").read_text()

    stamps = {p: p.stat().st_mtime_ns for p in runs.glob("*/model/model.keras")}
    assert main(cmd) == 0
    assert {p: p.stat().st_mtime_ns for p in runs.glob("*/model/model.keras")} == stamps

    # The shipped model's path: re-evaluate one model in place, compared with the grid's best runs.
    focal_dir = Path(results["best"]["gru-focal"])
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(focal_dir),
                "--data",
                str(sim_dir),
                "--compare",
                str(runs),
                "--tsne-points",
                "0",
            ]
        )
        == 0
    )
    metrics = json.loads((focal_dir / "metrics.json").read_text())
    assert {family for family in (r["family"] for r in metrics["comparison"]["table"])} == set(
        results["best"]
    )
    assert "## Do the paper's findings reproduce?" in (focal_dir / "report" / "README.md").read_text()
    assert not (focal_dir / "metrics.json.tmp").exists()


def test_calibrate_stores_a_temperature_keeps_the_argmax_and_reports_it(trained, sim_dir, tmp_path):
    import shutil

    model_dir = tmp_path / "calibrated"
    shutil.copytree(trained["out"], model_dir)
    args = ["calibrate", "--model", str(model_dir), "--data", str(sim_dir), "--tsne-points", "0"]
    assert main(args) == 0
    meta = load_metadata(model_dir)
    cal = meta.calibration
    assert cal is not None and cal.method == "temperature" and cal.n_objects > 0
    assert cal.log_loss_after <= cal.log_loss_before
    assert any("calibrated post hoc" in d for d in meta.training["departures_from_paper"])
    metrics = json.loads((model_dir / "metrics.json").read_text())
    original = json.loads((trained["out"] / "metrics.json").read_text())
    # temperature scaling changes no argmax: the confusion matrix is the uncalibrated model's
    assert metrics["test"]["confusion"]["counts"] == original["test"]["confusion"]["counts"]
    assert metrics["calibration"]["map"]["temperature"] == pytest.approx(cal.temperature)
    assert set(metrics["calibration"]["test"]["ece"]) == {"VS", "SN", "AGN", "top_label"}
    report = (model_dir / "report" / "README.md").read_text()
    assert "Calibrated by temperature scaling" in report
    assert (model_dir / "report" / "reliability.png").is_file()
    # --method none removes it again
    assert main([*args, "--method", "none"]) == 0
    assert load_metadata(model_dir).calibration is None
