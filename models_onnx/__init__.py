"""The writing brain: tokenizer, onnxruntime sessions, planner, critic. Torch lives in training/ only."""
