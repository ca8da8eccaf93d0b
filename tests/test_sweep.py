"""Sweeps: GPU assignment (fake device lists), run dirs per job, ready sweeps, SLURM and DDP
configs, the results collector, and multiruns of tiny jobs on CPU."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import OmegaConf, read_write

from salt.sweep import collect as collect_module
from salt.sweep import ddp, gpus
from salt.sweep.collect import collect, csv_text, markdown_table, write_results
from salt.sweep.runs import summarise

from conftest import FAST_TRAINING, REPO

SWEEPS = REPO / "sweep"


# --- GPU assignment --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({"CUDA_VISIBLE_DEVICES": "2,3"}, ["2", "3"]),
        ({"CUDA_VISIBLE_DEVICES": " 1 , 0 "}, ["1", "0"]),
        ({"CUDA_VISIBLE_DEVICES": "GPU-8f3a,GPU-77b1"}, ["GPU-8f3a", "GPU-77b1"]),
        ({"CUDA_VISIBLE_DEVICES": ""}, []),
        ({"CUDA_VISIBLE_DEVICES": "-1"}, []),
        ({}, ["0", "1", "2", "3"]),  # not set: ask the driver
    ],
)
def test_visible_gpus_from_the_environment_or_the_driver(environ, expected):
    assert gpus.visible_gpus(environ, query=lambda: ["0", "1", "2", "3"]) == expected


@pytest.mark.parametrize(
    "devices, available, per_job",
    [(1, 4, 1), (2, 4, 2), ("2", 4, 2), (-1, 4, 4), ("-1", 4, 4), ("auto", 4, 4), ([0, 1], 4, 2), (8, 4, 4), (1, 0, 1)],
)
def test_gpus_per_job_reads_trainer_devices_as_lightning_does(devices, available, per_job):
    assert gpus.gpus_per_job(devices, available) == per_job


def test_worker_count_fills_the_gpus():
    assert [gpus.worker_count(available, per_job) for available, per_job in [(4, 1), (4, 2), (3, 2), (1, 1), (0, 1)]] == [4, 2, 1, 1, 1]


def test_claims_are_exclusive_all_or_nothing_and_released(tmp_path):
    devices = ["0", "1", "2"]
    first = gpus.try_claim(devices, 1, tmp_path)
    second = gpus.try_claim(devices, 1, tmp_path)
    assert first.devices == ["0"] and second.devices == ["1"]
    assert gpus.try_claim(devices, 2, tmp_path) is None  # only "2" is free: take nothing
    third = gpus.try_claim(devices, 1, tmp_path)
    assert third.devices == ["2"]  # the failed pair left "2" unlocked
    with pytest.raises(TimeoutError, match="no 1 of GPUs 0,1,2 free"):
        gpus.claim_gpus(devices, 1, tmp_path, poll_s=0.01, timeout_s=0.05)
    first.release()
    third.release()
    assert gpus.claim_gpus(devices, 2, tmp_path, poll_s=0.01, timeout_s=1).devices == ["0", "2"]


def test_each_worker_of_a_pool_keeps_gpus_of_its_own(tmp_path):
    """joblib reuses workers for job after job: each must stay on one GPU, none shared."""
    from joblib import Parallel, delayed
    from joblib.externals.loky import get_reusable_executor

    devices, lock_dir = ["4", "5", "6"], tmp_path / "locks"

    def job(_):
        import os
        import time

        from salt.sweep import gpus

        pinned = gpus.pin_process(devices, 1, lock_dir, poll_s=0.05)
        time.sleep(0.3)  # keep the worker busy so that the pool spreads the jobs
        return os.getpid(), ",".join(pinned), os.environ["CUDA_VISIBLE_DEVICES"]

    try:
        results = Parallel(n_jobs=3, backend="loky")(delayed(job)(i) for i in range(9))
    finally:
        get_reusable_executor().shutdown(wait=True)  # the workers' locks go with them
    gpu_of_worker = {}
    for pid, pinned, visible in results:
        assert pinned == visible and pinned in devices
        assert gpu_of_worker.setdefault(pid, pinned) == pinned  # never moved between jobs
    assert len(set(gpu_of_worker.values())) == len(gpu_of_worker)  # never shared


def test_callback_sizes_the_pool_and_pins_each_job(compose_train, tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    monkeypatch.setattr(gpus, "_process_claim", None)
    callback = gpus.GpuPerJob(lock_dir=str(tmp_path / "locks"))
    master = compose_train("hydra/launcher=gpus", "trainer.devices=2")
    assert master.hydra.launcher.n_jobs == 0 and master.hydra.callbacks.gpu_per_job._target_ == "salt.sweep.gpus.GpuPerJob"
    callback.on_multirun_start(master)
    assert callback.devices == ["4", "5", "6", "7"] and master.hydra.launcher.n_jobs == 2  # 2 GPUs per job
    job = compose_train("hydra/launcher=gpus", "trainer.devices=2")
    with read_write(job.hydra):
        job.hydra.mode = RunMode.MULTIRUN
    callback.on_job_start(job, task_function=None)
    try:
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "4,5"
    finally:
        gpus._process_claim.release()


def test_a_single_run_is_left_on_the_gpus_it_was_given(compose_train, tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    monkeypatch.setattr(gpus, "_process_claim", None)
    callback = gpus.GpuPerJob(lock_dir=str(tmp_path / "locks"))
    callback.devices = ["4", "5"]
    callback.on_job_start(compose_train(), task_function=None)  # mode RUN
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "4,5" and gpus._process_claim is None


# --- run dirs: every job its own, stage 2 finds stage 1 ------------------------------------------


def run_dir(cfg) -> Path:
    """The dir Hydra gives a job composed with `cfg` (HydraConfig must be set to it)."""
    return Path(os.path.normpath(Path(cfg.hydra.sweep.dir) / cfg.hydra.sweep.subdir))


def test_multirun_jobs_are_variants_named_by_their_overrides(compose_train, tmp_path):
    outputs = tmp_path / "outputs"
    single = compose_train("model=linknet", fast=False)
    assert single.variant == "" and Path(os.path.normpath(single.hydra.run.dir)) == outputs / "train" / "resnet34" / "fold_0"
    dirs = {}
    for model in ("unet", "linknet"):
        job = compose_train("+variant_from=overrides", f"model={model}", "fold=3", "trainer=gpu", fast=False)
        dirs[model] = run_dir(job)
    assert dirs["linknet"] == outputs / "train" / "resnet34" / "data=synthetic,model=linknet" / "fold_3"
    assert dirs["unet"] != dirs["linknet"]


def test_stage2_of_a_variant_starts_from_stage1_of_the_same_variant(compose_train):
    grid = ("+variant_from=overrides", "model=linknet", "loss.weights.lovasz=0.5", "fold=2", "encoder=resnet18")
    stage1 = run_dir(compose_train("experiment=argus_stage1", *grid, fast=False))
    stage2 = compose_train("experiment=argus_stage2", *grid, fast=False)
    assert Path(os.path.normpath(stage2.init_checkpoint)) == stage1 / "checkpoints" / "best.ckpt"
    assert "model=linknet" in stage1.as_posix() and run_dir(stage2) != stage1


def sweep_jobs(name: str, *overrides: str) -> list:
    """Compose sweep/<name>.yaml as `python train.py -cd sweep -cn <name> overrides` would, and
    every job configuration its sweeper would launch (HydraConfig set to each in turn)."""
    searchpath = f"hydra.searchpath=[file://{REPO / 'conf'}]"  # what -cd adds beside conf/
    jobs = []
    try:
        with initialize_config_dir(str(SWEEPS), version_base="1.3"):
            master = compose(name, overrides=[searchpath, *overrides], return_hydra_config=True)
            HydraConfig.instance().set_config(master)
            assert master.hydra.mode == RunMode.MULTIRUN
            params = OmegaConf.to_container(master.hydra.sweeper.params, resolve=True)
            arguments = [f"{key}={value}" for key, value in params.items()] + list(overrides)
            [batch] = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(arguments), None)
            for job_overrides in batch:
                job = compose(name, overrides=[searchpath, *job_overrides], return_hydra_config=True)
                HydraConfig.instance().set_config(job)
                jobs.append((job, run_dir(job), OmegaConf.select(job, "init_checkpoint")))
    finally:
        HydraConfig.instance().cfg = None
    return jobs


@pytest.mark.parametrize(
    "name, overrides, count, prefix",
    [
        ("encoder_decoder", (), 6, "encoder_decoder"),
        ("loss_weights", (), 9, "loss_weights/resnet34/loss.weights"),
        ("argus", ("experiment=argus_mosaic",), 6, "argus_mosaic/se_resnext50/fold_"),
    ],
)
def test_every_job_of_a_ready_sweep_gets_its_own_run_dir(name, overrides, count, prefix):
    header = (SWEEPS / f"{name}.yaml").read_text().splitlines()
    assert any(line.startswith("#   python train.py -cd sweep -cn " + name) for line in header)  # its one-line command
    dirs = [path for _, path, _ in sweep_jobs(name, *overrides)]
    assert len(dirs) == count == len(set(dirs))
    assert all(path.as_posix().startswith(f"outputs/{prefix}") for path in dirs)


def test_the_recipe_sweep_chains_stage2_to_stage1_fold_by_fold():
    stage1 = {job.fold: path for job, path, _ in sweep_jobs("argus", "experiment=argus_stage1")}
    stage2 = sweep_jobs("argus", "experiment=argus_stage2")
    assert sorted(stage1) == [0, 1, 2, 3, 4] and len(stage2) == 5
    for job, path, init in stage2:
        assert Path(os.path.normpath(init)) == stage1[job.fold] / "checkpoints" / "best.ckpt"
        assert path == Path("outputs", "argus_stage2", "se_resnext50", f"fold_{job.fold}")


# --- SLURM and DDP -------------------------------------------------------------------------------


def test_slurm_launcher_config_composes_and_submitit_accepts_it(compose_train, tmp_path, monkeypatch):
    import submitit
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

    cfg = compose_train("hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.gpus_per_node=2", "experiment=argus_stage1", fast=False)
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    params.pop("_target_")
    assert params["submitit_folder"] == f"{tmp_path / 'outputs'}/.submitit/%j" and params["name"] == "argus_stage1"
    launcher = SlurmLauncher(**params)
    launcher.setup(hydra_context=None, task_function=lambda cfg: None, config=cfg)
    submitted = {}

    def map_array(executor, fn, *args):  # stands in for sbatch
        submitted["script"] = executor._executor._make_submission_file_text("python -m submitit.core._submit", "uid")
        return []

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", map_array)
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))  # "srun is on PATH"
    launcher.launch([["fold=0"], ["fold=1"]], initial_job_idx=0)
    script = submitted["script"]
    for line in ("--partition=gpu", "--gpus-per-node=2", "--time=2880", "--cpus-per-task=8", "--mem=48GB", "--job-name=argus_stage1"):
        assert f"#SBATCH {line}" in script


@pytest.mark.parametrize(
    "in_multirun, environ, method",
    [
        (False, {}, "popen"),  # a single run: Lightning reruns the command per extra GPU
        (True, {}, "spawn"),  # rerunning a sweep's command would rerun the sweep
        (True, {"SLURM_NTASKS": "1"}, "spawn"),
        (True, {"SLURM_NTASKS": "4"}, "popen"),  # SLURM started the ranks; Lightning joins them
        (True, {"TORCHELASTIC_RUN_ID": "x"}, "popen"),
    ],
)
def test_ddp_start_method_never_reruns_a_sweep(in_multirun, environ, method):
    assert ddp.start_method(in_multirun, environ) == method


def test_ddp_trainer_config_builds_a_ddp_strategy(compose_train):
    import hydra

    cfg = compose_train("trainer=ddp", fast=False)
    assert cfg.trainer.devices == -1 and cfg.trainer.sync_batchnorm
    strategy = hydra.utils.instantiate(cfg.trainer.strategy)
    assert type(strategy).__name__ == "DDPStrategy" and strategy._start_method == "popen"


# --- the results collector -----------------------------------------------------------------------


def fake_run(run: Path, overrides: list[str], scores: list[float], minutes: float) -> Path:
    """A run dir as training leaves it: overrides, metrics CSV, a job log, a checkpoint."""
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {line}\n" for line in ["+variant_from=overrides", *overrides]))
    (run / "metrics").mkdir()
    rows = ["epoch,step,train/loss,val/score,val/score_best"]
    for epoch, score in enumerate(scores):
        rows += [f"{epoch},{10 * epoch + 9},0.5,,", f"{epoch},{10 * epoch + 9},,{score},{max(scores[: epoch + 1])}"]
    (run / "metrics" / "metrics.csv").write_text("\n".join(rows) + "\n")
    start = time.time() - 3600
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(start))
    (run / "train.log").write_text(f"[{stamp},000][__main__][INFO] - start\n")
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    os.utime(run / "checkpoints" / "last.ckpt", (start + 60 * minutes, start + 60 * minutes))
    os.utime(run / "metrics" / "metrics.csv", (start + 60 * minutes - 5, start + 60 * minutes - 5))
    return run


@pytest.fixture
def fake_sweep(tmp_path) -> Path:
    root = tmp_path / "outputs" / "loss_weights"
    grid = [(0.5, 0.1, [0.61, 0.70, 0.69], 12), (1.0, 0.1, [0.64, 0.72, 0.75], 15), (0.5, 0.5, [0.55, 0.58, 0.58], 9)]
    for lovasz, empty, scores, minutes in grid:
        variant = f"loss.weights.empty_bce={empty},loss.weights.lovasz={lovasz}"
        fake_run(root / "resnet34" / variant / "fold_0", ["experiment=argus_stage1", f"loss.weights.lovasz={lovasz}", f"loss.weights.empty_bce={empty}", "fold=0"], scores, minutes)
    return root


def test_summary_of_one_run(fake_sweep):
    run = summarise(fake_sweep / "resnet34" / "loss.weights.empty_bce=0.5,loss.weights.lovasz=0.5" / "fold_0")
    assert run.best_score == 0.58 and run.best_epoch == 1 and run.epochs == 3  # the first epoch to reach it
    assert run.overrides == {"experiment": "argus_stage1", "loss.weights.lovasz": "0.5", "loss.weights.empty_bce": "0.5", "fold": "0"}
    assert run.wall_time_s == pytest.approx(9 * 60, abs=2)


def test_collector_tables_the_sweep_best_first(fake_sweep):
    runs = collect([fake_sweep])
    assert [run.best_score for run in runs] == [0.75, 0.70, 0.58]
    markdown = markdown_table(runs, fake_sweep)
    lines = markdown.splitlines()
    assert "shared overrides: experiment=argus_stage1 fold=0" in markdown
    assert lines[4] == "| loss.weights.lovasz | loss.weights.empty_bce | best val/score | epoch | epochs | wall time | run |"
    assert lines[6].startswith("| 1.0 | 0.1 | 0.7500 | 2 | 3 | 15m | resnet34/loss.weights.empty_bce=0.1,loss.weights.lovasz=1.0/fold_0 |")
    table = csv_text(runs, fake_sweep).splitlines()
    assert table[0] == "run,loss.weights.lovasz,loss.weights.empty_bce,experiment,fold,best_score,best_epoch,epochs,wall_time_s"
    assert table[1].split(",")[-4:-1] == ["0.75", "2", "3"]


def test_collect_command_writes_markdown_csv_and_plot(fake_sweep, capsys):
    collect_module.main([str(fake_sweep)])
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"wrote {fake_sweep}/sweep_results.md, {fake_sweep}/sweep_results.csv, {fake_sweep}/sweep_results.png"
    assert (fake_sweep / "sweep_results.md").read_text() in out
    assert (fake_sweep / "sweep_results.csv").read_text().count("\n") == 4
    assert (fake_sweep / "sweep_results.png").stat().st_size > 10_000


def test_collect_without_runs_is_one_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "salt.sweep.collect", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"error: no runs under {tmp_path} (a run dir holds metrics/metrics.csv)"


# --- multiruns of tiny jobs on CPU ---------------------------------------------------------------


def multirun(tmp_path: Path, synthetic_dir: Path, *overrides: str, environ: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "train.py",
        "-m",
        "data=synthetic",
        f"data.dir={synthetic_dir}",
        f"paths.output_dir={tmp_path / 'outputs'}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.callbacks.gpu_per_job.lock_dir={tmp_path / 'locks'}",
        *FAST_TRAINING,
        "trainer.max_epochs=1",
        *overrides,
    ]
    env = {**os.environ, "WANDB_MODE": "offline", **(environ or {})}
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_multirun_of_two_tiny_jobs_on_their_own_gpus_is_collected(tmp_path, synthetic_dir):
    # Two fake GPUs: two workers, each pinned to one; the jobs differ in a key outside the run
    # dir scheme, so only their variants keep them apart.
    result = multirun(tmp_path, synthetic_dir, "loss.weights.lovasz=0.5,1.0", environ={"CUDA_VISIBLE_DEVICES": "5,6"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "GPUs 5,6: 2 job(s) at a time, 1 GPU(s) each" in result.stdout
    runs = collect([tmp_path / "outputs"])
    assert sorted(run.overrides["loss.weights.lovasz"] for run in runs) == ["0.5", "1.0"]
    assert all(run.epochs == 1 and run.best_score is not None and run.wall_time_s > 0 for run in runs)
    gpu_of_worker = {}
    for run in runs:
        [(gpu, worker)] = re.findall(r"on GPU (\d) \(worker (\d+)\)", (run.run_dir / "train.log").read_text())
        assert gpu in ("5", "6") and gpu_of_worker.setdefault(worker, gpu) == gpu
    assert len(set(gpu_of_worker.values())) == len(gpu_of_worker)
    markdown, paths = write_results(runs, tmp_path / "outputs", tmp_path / "results")
    assert markdown.count("| 0.5 |") == 1 and markdown.count("| 1.0 |") == 1 and all(path.is_file() for path in paths)


@pytest.mark.slow
def test_ddp_inside_a_multirun_spawns_its_ranks_and_writes_one_run_dir(tmp_path, synthetic_dir):
    result = multirun(
        tmp_path, synthetic_dir,
        "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true", "trainer.sync_batchnorm=false", "seed=7",
        environ={"CUDA_VISIBLE_DEVICES": ""},  # no GPUs: the job runs in the launching process
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "spawning the processes of the other ranks" in result.stdout + result.stderr
    [run] = collect([tmp_path / "outputs"])
    assert run.epochs == 1 and "seed=7" in run.run_dir.parent.name
