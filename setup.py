"""Packaging for the batch stylization job.

The distribution holds the runtime packages only (`pipeline`, `transforms`, `models`): it is what
Dataflow workers install, with the runtime requirements (no TensorFlow). `model_building`, which
builds, trains and converts models with TensorFlow, stays in the source checkout and runs from
there with the `building` extra installed (`pip install -e '.[building]'`); it is never shipped.
scikit-image only supplies the demo's sample photos (`demo` extra, installed by run_local.sh).
Minimum versions live here; `constraints.txt` pins the versions the tests run against.
"""
import setuptools

RUNTIME = [
    'apache-beam[gcp]>=2.60.0',
    'ai-edge-litert>=1.2.0',
    'numpy>=1.26',
    'pillow>=10.3',
    'opencv-python-headless>=4.10.0.84',  # vectorized resizes (imaging.resized); numpy 2
    'google-cloud-storage>=2.16',
    'fasteners>=0.15',
    'pyarrow>=14',  # the state snapshots (Parquet)
]
BUILDING = [
    'tensorflow-cpu>=2.16',
    'scikit-image>=0.22',  # training photos for model_building.distill
]
TEST = BUILDING + [
    'gcp-storage-emulator>=2024.8.3',
    'pytest>=8.0',
    'build>=1.0',  # the sdist test, as Dataflow's staging builds it
    'setuptools>=68',
    'hypothesis>=6.100',
    'ruff>=0.6',
]
DEMO = ['scikit-image>=0.22']

setuptools.setup(
    name='batch-stylize',
    version='0.1.0',
    description='A Beam job that re-renders an image catalog in a set of artistic styles.',
    python_requires='>=3.10',
    packages=setuptools.find_packages(include=['pipeline', 'transforms', 'models']),
    package_data={'models': ['data/*.json', 'data/house/*.tflite']},
    install_requires=RUNTIME,
    extras_require={'building': BUILDING, 'test': TEST, 'demo': DEMO},
    entry_points={'console_scripts': ['batch-stylize=pipeline.run:main']},
)
