"""Sweeps: many training runs from one Hydra command, and their results in one table.

- `salt.sweep.gpus`: each job of a local multirun on GPUs of its own (conf/hydra/launcher/gpus.yaml).
- `salt.sweep.ddp`: Lightning DDP started the way that is safe inside a multirun (conf/trainer/ddp.yaml).
- `salt.sweep.runs` and `salt.sweep.collect`: a sweep's run dirs summarised as a markdown and CSV
  table plus a plot (`python -m salt.sweep.collect outputs/NAME`).
"""
