"""Everything about the style networks, free of Beam.

`registry` names the published model files, `fetch` brings a model file to local disk and verifies
it, `interpreter` runs a .tflite file with tensors addressed by name, `imaging` decodes pictures and
holds the pre/post-processing contract (the only place that knows 256, 384 and [0, 1]), and `tiny`
builds small stand-in models for tests.
"""
