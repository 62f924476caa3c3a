"""PNG curves: grouping of logged series, valid non-blank images, CSV input, resume state."""

from __future__ import annotations

import numpy as np
from PIL import Image

from embedlight.callbacks.plots import MetricRecorder, PlotCallback, panels, plot_series, records_from_csv


def _series():
    rec = MetricRecorder()
    for step in range(20):
        rec.log_metrics(
            {"train/loss": 2.0 * 0.9**step, "train/lr": 1e-4 * min(1, (step + 1) / 5), "epoch": 0}, step
        )
    rec.log_metrics({"eval_before/bbc/ndcg@10": 0.90}, 0)
    rec.log_metrics({"eval_step_10/bbc/ndcg@10": 0.93}, 10)
    rec.log_metrics({"eval_after/bbc/ndcg@10": 0.95}, 20)
    rec.log_metrics({"val/bbc_val/ndcg@10": 0.91, "throughput/samples_per_sec": 4.5}, 10)
    rec.log_metrics({"train/loss": float("nan")}, 21)  # a non-finite value is not drawn
    return rec.series


def test_panels_group_metrics_and_join_evaluation_phases_in_step_order():
    groups = panels(_series())
    assert set(groups) == {"loss", "lr", "evaluation", "validation", "throughput"}
    assert groups["evaluation"] == {"bbc/ndcg@10": [(0, 0.90), (10, 0.93), (20, 0.95)]}
    assert groups["validation"] == {"bbc_val/ndcg@10": [(10, 0.91)]}
    assert len(groups["loss"]["train/loss"]) == 20  # the NaN at step 21 was dropped, "epoch" ignored
    assert "epoch" not in str(groups)


def test_plot_series_writes_valid_non_blank_pngs(tmp_path):
    written = plot_series(_series(), str(tmp_path))
    names = sorted(p.rsplit("/", 1)[1] for p in written)
    assert names == ["evaluation.png", "loss.png", "lr.png", "throughput.png", "validation.png"]
    assert not list(tmp_path.glob("*.tmp"))  # atomic: temporary files renamed
    for path in written:
        with Image.open(path) as img:
            assert img.format == "PNG" and img.width >= 300 and img.height >= 250
            pixels = np.asarray(img.convert("L"), dtype=np.float32)
        assert pixels.std() > 5  # not a blank canvas
        assert (pixels < 128).mean() > 0.005  # some dark ink: axes, text, the curve


def test_records_from_csv_matches_the_rows(tmp_path):
    csv = tmp_path / "metrics.csv"
    csv.write_text("epoch,step,train/loss,eval_after/t/ndcg@10\n0,0,2.5,\n0,1,2.25,\n0,2,,0.75\n")
    assert records_from_csv(str(csv)) == {
        "train/loss": [(0, 2.5), (1, 2.25)],
        "eval_after/t/ndcg@10": [(2, 0.75)],
    }


def test_plot_callback_state_survives_a_checkpoint_round_trip():
    cb = PlotCallback(output_dir="unused")
    cb.recorder.log_metrics({"train/loss": 1.5}, 3)
    restored = PlotCallback(output_dir="unused")
    restored.load_state_dict(cb.state_dict())
    restored.recorder.log_metrics({"train/loss": 1.25}, 4)
    assert restored.recorder.series["train/loss"] == [(3, 1.5), (4, 1.25)]


def test_every_run_writes_plots_even_without_a_logger(tiny_bert, tmp_path):
    from embedlight.training.run import run
    from tests.helpers import compose_cfg, tiny_overrides

    run(compose_cfg(tiny_overrides(tiny_bert, str(tmp_path), steps=3, extra=["logger=none", "export=false"])))
    plots = sorted(p.name for p in (tmp_path / "out" / "plots").glob("*.png"))
    assert plots == ["evaluation.png", "loss.png", "lr.png"]
