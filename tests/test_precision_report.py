"""`benchmark` and `export --int8` say which precision each runtime really computed in, and which
CPU features decide it (issue 28): on a CPU with AMX, OpenVINO's own default for a float model is
bf16, while yoloxkit runs float IRs in fp32."""

from __future__ import annotations

import openvino as ov

from yoloxkit.benchmarking import BenchmarkRow, TimingStats, cpu_features, format_table
from yoloxkit.cli import main
from yoloxkit.infer.openvino_backend import openvino_precision

CPUINFO_AMX = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
"""
CPUINFO_ARM = """processor\t: 0
Features\t: fp asimd evtstrm asimddp fphp
Hardware\t: Raspberry Pi 5
"""


def test_cpu_features_name_the_model_and_the_features_that_decide_the_precision():
    assert cpu_features(CPUINFO_AMX) == ("Intel(R) Xeon(R) Platinum 8480+; AVX2, AVX-512, AVX-512 VNNI, AVX-512 BF16,"
                                         " AMX-BF16, AMX-INT8")
    assert cpu_features(CPUINFO_ARM) == "Raspberry Pi 5; NEON dot product, NEON fp16"
    assert cpu_features("flags : sse\n").startswith("unknown CPU; none of AVX2")


def test_openvino_says_it_forces_fp32_where_its_default_differs():
    core = ov.Core()
    default = core.get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()
    text = openvino_precision(core, None)
    assert text == "fp32" if default == "f32" else text == f"fp32 (forced; OpenVINO's default on this CPU: {default})"


def test_the_table_has_a_precision_column():
    stats = TimingStats(10.0, 12.0, 100.0, 5, 9.0)
    table = format_table([BenchmarkRow("openvino", "yolox-nano", 416, 1, stats, precision="fp32 (forced)")])
    assert table.splitlines()[0].endswith("| precision |")
    assert table.splitlines()[2].endswith("| fp32 (forced) |")


def test_benchmark_prints_the_cpu_and_each_rows_precision(capsys):
    assert main(["benchmark", "--backend", "torch", "openvino", "--iters", "1", "--warmup", "0", "--size", "96",
                 "--random-init"]) == 0
    out = capsys.readouterr().out
    assert f"CPU: {cpu_features()}" in out
    rows = [line for line in out.splitlines() if line.startswith("| yolox-nano")]
    assert rows[0].endswith("| fp32 |") and "| fp32" in rows[1]


def _int8_result(**changes):
    from pathlib import Path

    from yoloxkit.quantize.export_int8 import Int8Result

    values = dict(path=Path("m.xml"), format="openvino", runtime="openvino", recipe="NNCF mixed", calibration_images=8,
                  max_abs_diff=0.01, output_scale=1.0, compared_images=8, float_ms=110.0, int8_ms=39.0,
                  float_precision="fp32 (forced; OpenVINO's default on this CPU: bf16)")
    values.update(changes)
    return Int8Result(**values)


def test_int8_report_names_the_float_precision_and_warns_where_bf16_float_is_as_fast():
    # yolox-s at 640 on an AMX CPU (docs/int8.md): fp32 110 ms, bf16 30 ms, INT8 39 ms
    result = _int8_result(float_default=("bf16", 30.4))
    assert "float computed in fp32 (forced; OpenVINO's default on this CPU: bf16)" in result.summary()
    assert "the float model at OpenVINO's default bf16: 30.4 ms" in result.summary()
    assert "no slower than int8 (39.0 ms): deploy the float IR with OpenVINO's defaults" in result.advice()
    # where int8 beats the default float, or the default is f32, no such note
    assert _int8_result(float_default=("bf16", 60.0)).advice() is None
    assert _int8_result(float_default=None).advice() is None
