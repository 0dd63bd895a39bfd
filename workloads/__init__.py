"""Workload sources: builders for shipped traces and extractors from models, configs, ONNX and CSV."""
