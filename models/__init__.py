"""What the job's workers run about the style networks: no TensorFlow, no Beam pipeline code.

`registry` names the model files, `fetch` brings one to local disk and verifies it, `contract`
runs a .tflite file with tensors addressed by name and checked inputs, `imaging` decodes pictures
and holds the pre/post-processing (the only place that knows 256, 384 and [0, 1]), `rendering`
and `tiling` make the delivered picture, and `style_bank` holds the built-in styles.
"""
