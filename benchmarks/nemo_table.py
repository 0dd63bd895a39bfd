"""The NVIDIA NeMo Framework Llama-2 inference table: average end-to-end latency in ms, as published.

Source: NVIDIA NeMo Framework user guide, "Llama-2 Results / Inference Performance"
(https://docs.nvidia.com/nemo-framework/user-guide/latest/performance/llama.html), configuration 1
("chatbot conversation": 128 input tokens, 20 output tokens, batch 1-8, fp16 TensorRT-LLM engines
served by NeMo, PP 1, tensor-parallel size TP = number of GPUs), A100 80GB SXM4 and H100 80GB HBM3.

`NEMO_MS[model][gpu][tp][batch]`. The stored copy of the page this was read from ends inside the
Llama-2-13B TP 4 rows: Llama-2-13B at TP 4 batch 8 and TP 8 and every Llama-2-70B row are not
here (they are on the live page; add them here, with the same keys, to extend the held-out check).
Two Llama-2-13B A100 entries break the table's own order (TP 2 batch 4: 320.0 ms, above batch 8's
188.6; TP 4 batch 1: 207.8 ms, above batch 2's 84.6); `simulator.serving_stack.inconsistent_entries`
finds and skips them by that rule. Llama-2-13B at TP 1 batch 1 is listed faster than 7B (142.5 vs
234.0 ms on A100), which was questioned publicly (NVIDIA/NeMo discussion 8455).
"""

NEMO_INPUT, NEMO_OUTPUT = 128, 20
NEMO_ARCH = {"A100": "gpu_a100_sxm4_80gb", "H100": "gpu_h100_sxm5_80gb"}

NEMO_MS: dict[str, dict[str, dict[int, dict[int, float]]]] = {
    "llama2-7b": {
        "A100": {1: {1: 234.0, 2: 249.6, 4: 272.6, 8: 329.5}, 2: {1: 171.7, 2: 180.3, 4: 202.9, 8: 237.6},
                 4: {1: 143.7, 2: 149.9, 4: 165.2, 8: 196.4}, 8: {1: 136.5, 2: 143.3, 4: 158.6, 8: 181.9}},
        "H100": {1: {1: 153.8, 2: 160.8, 4: 174.8, 8: 199.2}, 2: {1: 128.6, 2: 132.0, 4: 137.9, 8: 156.2},
                 4: {1: 107.4, 2: 114.0, 4: 120.4, 8: 134.6}, 8: {1: 97.6, 2: 109.1, 4: 116.2, 8: 129.1}},
    },
    "llama2-13b": {
        "A100": {1: {1: 142.5, 2: 163.3, 4: 198.5, 8: 282.6}, 2: {1: 100.4, 2: 112.2, 4: 320.0, 8: 188.6},
                 4: {1: 207.8, 2: 84.6, 4: 102.3}},
        "H100": {1: {1: 86.4, 2: 94.2, 4: 117.8, 8: 146.7}, 2: {1: 69.7, 2: 73.7, 4: 88.3, 8: 109.8},
                 4: {1: 61.4, 2: 62.0, 4: 72.0}},
    },
}
