"""bf16 autocast where the hardware computes in bf16, fp32 elsewhere: `precision: auto`.

bf16 pays only where the arithmetic is native: GPUs from Ampere on, and CPUs with AMX or
AVX-512 BF16 (oneDNN's bf16 kernels). On a CPU with AVX2 only, autocast converts every
operand to and from bf16 and computes in fp32: the CPU recipe's network trained at 1.5
tiles/s in bf16 against 16.8 in fp32 on an AMD EPYC with AVX2 (benchmarks/RESULTS.md,
"bf16 without native bf16"), while on a Xeon with AMX bf16 is the faster one. So the CPU
recipe and the GPU trainer ask for `auto`, and the choice is made on the machine that runs.
"""

from __future__ import annotations

import torch

# What `auto` becomes for the Lightning Trainer (trainer.precision) and for inference
# (predict.py / section.py `precision`).
TRAINER_PRECISION = {True: "bf16-mixed", False: "32-true"}
INFERENCE_PRECISION = {True: "bf16", False: "32"}


def native_bf16(device: str | torch.device) -> bool:
    """Whether `device` computes bf16 natively (not by conversion to fp32)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        cpu = getattr(torch, "cpu", None)
        amx = getattr(cpu, "_is_amx_tile_supported", None)
        avx512_bf16 = getattr(cpu, "_is_avx512_bf16_supported", None)
        if amx is None or avx512_bf16 is None:  # an older torch: oneDNN's own check
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        return bool(amx() or avx512_bf16())
    return False


def trainer_device(accelerator: str) -> str:
    """The device type a Lightning `trainer.accelerator` value trains on."""
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return "cuda"
    return "cpu"


def trainer_precision(precision: str, accelerator: str) -> str:
    """`trainer.precision` with `auto` resolved for the trainer's device; others unchanged."""
    if str(precision) != "auto":
        return str(precision)
    return TRAINER_PRECISION[native_bf16(trainer_device(str(accelerator)))]


def inference_precision(precision: str, device: torch.device) -> str:
    """Inference `precision` ("32" | "bf16" | "auto") with `auto` resolved for `device`."""
    if str(precision) != "auto":
        return str(precision)
    return INFERENCE_PRECISION[native_bf16(device)]
