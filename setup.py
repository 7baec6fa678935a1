"""Packaging for the batch stylization job.

Workers need only the runtime requirements (no TensorFlow): Beam, the LiteRT interpreter, numpy,
Pillow and the GCS client. TensorFlow builds, trains and converts models and is a test/dev extra;
scikit-image only supplies the demo's sample photos (`demo` extra, installed by run_local.sh).
"""
import setuptools

RUNTIME = [
    'apache-beam[gcp]>=2.60.0',
    'ai-edge-litert>=1.2.0',
    'numpy>=1.26',
    'pillow>=10.3',
    'google-cloud-storage>=2.16',
    'fasteners>=0.15',
]
TEST = [
    'tensorflow-cpu>=2.16',
    'gcp-storage-emulator>=2024.8.3',
    'pytest>=8.0',
    'build>=1.0',  # the sdist test, as Dataflow's staging builds it
    'setuptools>=68',
    'scikit-image>=0.22',  # sample photos: the demo's, and training photos for models.distill
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
    extras_require={'test': TEST, 'demo': DEMO},
    entry_points={'console_scripts': ['batch-stylize=pipeline.run:main']},
)
