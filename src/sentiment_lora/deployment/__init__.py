"""Models to deploy: ONNX export (merged LoRA, optional int8) and the ONNX Runtime backend."""
