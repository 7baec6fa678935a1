"""Building the transfer networks: never imported by the job's workers.

TensorFlow lives here, imported at the top of each module, and is installed with the `building`
extra (`pip install -e '.[building]'`). `transfer_net` defines the network in Keras,
`import_published` loads a published file's weights into it, `export` writes `.tflite` files the
job runs, `optimize` makes the fast exports, `distill` and `widen` train the house model,
`mixed_precision` chooses the layers its int8-kernel export keeps in float, `tiny`
makes small stand-in models for tests, and `quality` scores pictures (SSIM, PSNR).
It imports `models` (the runtime), never the other way round.
"""
