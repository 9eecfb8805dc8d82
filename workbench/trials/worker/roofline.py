"""The decode-phase roofline: how close a trial's throughput comes to what memory bandwidth allows.

In the decode phase every step reads all weights (at their quantized size) and the KV cache of every
sequence in the batch, and emits one token per sequence. With bandwidth B, a step cannot be shorter
than bytes/B, so the output throughput is bounded by

    bound_tok_s = batch x B / (weight_bytes + batch x kv_bytes_per_token x mean_context)

Achieved / bound says how much of the hardware the engine settings leave unused; it is an estimate
(it ignores compute, activations and prefill) and is labelled as one wherever it is shown. The
functions here are pure; the bandwidth is measured in the worker (`measure_bandwidth`) or read from
the documented table below.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

#: peak DRAM bandwidth in GB/s (10^9 bytes/s) from the vendors' data sheets, for GPUs a worker did not measure
DATASHEET_GB_S: dict[str, float] = {
    "H200": 4800.0,
    "H100 SXM": 3350.0,
    "H100 NVL": 3900.0,
    "H100 PCIe": 2000.0,
    "H100": 3350.0,
    "GH200": 4000.0,
    "B200": 8000.0,
    "B100": 8000.0,
    "GB200": 8000.0,
    "A100-SXM4-80GB": 2039.0,
    "A100-PCIE-80GB": 1935.0,
    "A100 80GB": 2039.0,
    "A100": 1555.0,
    "L40S": 864.0,
    "L40": 864.0,
    "L4": 300.0,
    "A10G": 600.0,
    "A10": 600.0,
    "RTX 4090": 1008.0,
    "RTX 6000 Ada": 960.0,
}


def datasheet_bandwidth(device_name: str) -> float | None:
    """The table's GB/s for a device name as NVML reports it ("NVIDIA H200", "NVIDIA A100-SXM4-80GB")."""
    name = device_name.removeprefix("NVIDIA ").strip()
    for key in sorted(DATASHEET_GB_S, key=len, reverse=True):  # the most specific entry first
        if re.search(rf"(^|[\s-]){re.escape(key)}($|[\s-])", name) or name == key:
            return DATASHEET_GB_S[key]
    return None


def decode_batch(
    max_batch_size: int, num_requests: int, kv_cache_tokens: int | None, tokens_per_request: int
) -> int:
    """Sequences decoded together: capped by the scheduler, the workload and what the KV cache holds."""
    b = min(max_batch_size, num_requests)
    if kv_cache_tokens:
        b = min(b, max(1, kv_cache_tokens // max(tokens_per_request, 1)))
    return max(b, 1)


def decode_bound(
    *,
    weight_bytes: float,
    kv_bytes_per_token: float,
    batch: int,
    mean_context: float,
    bandwidth_gb_s: float,
) -> dict[str, float]:
    """Bytes one decode step moves, its shortest possible time, and the bounded output throughput."""
    step_bytes = weight_bytes + batch * kv_bytes_per_token * mean_context
    step_s = step_bytes / (bandwidth_gb_s * 1e9)
    return {
        "step_bytes": step_bytes,
        "weight_bytes": weight_bytes,
        "kv_read_bytes": batch * kv_bytes_per_token * mean_context,
        "batch": float(batch),
        "mean_context": mean_context,
        "bandwidth_gb_s": bandwidth_gb_s,
        "step_s": step_s,
        "bound_output_tok_s": batch / step_s,
    }


def roofline_metrics(
    bound: dict[str, float], output_tok_s: float, tpot_ms_p50: float | None
) -> dict[str, float]:
    """The flat metrics: the bound, achieved/bound on throughput, and the step bound against measured TPOT."""
    out = {
        "roofline_output_tok_s": bound["bound_output_tok_s"],
        "roofline_fraction": output_tok_s / bound["bound_output_tok_s"],
        "roofline_step_ms": bound["step_s"] * 1000.0,
        "memory_bandwidth_gb_s": bound["bandwidth_gb_s"],
    }
    # TPOT is one sequence's time per decode step: the step bound over it is decode-only efficiency
    if tpot_ms_p50 and math.isfinite(tpot_ms_p50) and tpot_ms_p50 > 0:
        out["roofline_decode_fraction"] = bound["step_s"] * 1000.0 / tpot_ms_p50
    return out


def trial_roofline(
    *,
    knobs: dict[str, Any],
    report: dict[str, Any],
    weight_bytes: float | None,
    kv_bytes_per_token: float | None,
    kv_cache_tokens: int | None,
    bandwidth: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """The roofline block of a trial's report (inputs included, so the figure is traceable), or None."""
    if not bandwidth or not bandwidth.get("gb_s") or not weight_bytes or not kv_bytes_per_token:
        return None
    info = report["request_info"]
    n = int(info["num_requests"])
    avg_in, avg_out = float(info["avg_input_length"]), float(info["avg_output_length"])
    batch = decode_batch(
        int(knobs.get("max_batch_size") or n), n, kv_cache_tokens, int(math.ceil(avg_in + avg_out))
    )
    bound = decode_bound(
        weight_bytes=float(weight_bytes),
        kv_bytes_per_token=float(kv_bytes_per_token),
        batch=batch,
        mean_context=avg_in + avg_out / 2,  # the context grows from the prompt to prompt + output
        bandwidth_gb_s=float(bandwidth["gb_s"]),
    )
    perf, stream = report["performance"], report["streaming_metrics"]
    metrics = roofline_metrics(
        bound, float(perf["system_output_throughput_tok_s"]), stream["tpot_percentiles"].get("p50")
    )
    return {"estimate": True, "bandwidth": bandwidth, "inputs": bound, "metrics": metrics}


def measure_bandwidth(device: str = "cuda", size_mib: int | None = None, repeats: int = 10) -> dict[str, Any]:
    """Device-to-device copy bandwidth (read + write bytes over time): the median of `repeats` copies."""
    import torch

    size = (size_mib or (2048 if device == "cuda" else 256)) * 1024**2
    src = torch.empty(size, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    times = []
    for i in range(repeats + 2):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            dst.copy_(src)
            end.record()
            end.synchronize()
            dt = start.elapsed_time(end) / 1000.0
        else:
            t = time.perf_counter()
            dst.copy_(src)
            dt = time.perf_counter() - t
        if i >= 2:  # the first copies pay for allocation and clocks ramping up
            times.append(dt)
    del src, dst
    if device == "cuda":
        torch.cuda.empty_cache()
    times.sort()
    median = times[len(times) // 2]
    return {
        "gb_s": 2 * size / median / 1e9,
        "method": f"measured: {size // 1024**2} MiB {device} copy, median of {repeats}",
        "copy_bytes": size,
    }


def bandwidth_for(
    device_kind: str, device_name: str, measured: dict[str, Any] | None
) -> dict[str, Any] | None:
    """A measured copy when there is one, else the data sheet's figure (labelled), else None."""
    if measured and measured.get("gb_s"):
        out = dict(measured)
        sheet = datasheet_bandwidth(device_name) if device_kind == "cuda" else None
        if sheet:
            out["datasheet_gb_s"] = sheet
        return out
    sheet = datasheet_bandwidth(device_name) if device_kind == "cuda" else None
    if sheet:
        return {"gb_s": sheet, "method": f"data sheet ({device_name})"}
    return None
