"""The embedding back-ends' names, apart from nlu/embeddings.py so that reading the
configuration does not import numpy (the thread caps must be set before it is imported:
services/core/threads.py)."""

BACKENDS = ("onnx-int8", "sentence-transformers")
