"""netflix-assets: the Dagster data-asset platform of a video-streaming service."""

from setuptools import find_packages, setup

# Pins checked together with pip's resolver. delta-spark is 4.4.0 (not 4.4.1) because 4.4.1 has no
# jar on Maven Central and the Python package must match the jar the Spark session loads.
CORE = [
    "dagster==1.13.27",
    "dagster-webserver==1.13.27",
    "dagster-aws==0.29.27",
    "dagster-postgres==0.29.27",
    "dagster-k8s==0.29.27",
    "pyspark==4.2.0",
    "delta-spark==4.4.0",
    "deltalake>=1.6,<2",
    "duckdb>=1.1",
    "pyarrow>=17",
    "orjson>=3.10",
    "ffmpeg-python==0.2.0",
    "imageio-ffmpeg==0.8.1",
    "av>=14,<19",
    "m3u8>=6",
    "jsonschema>=4.23",
    "redis[hiredis]>=5,<8",  # hiredis parses replies in C: the awaited pipeline ~4x faster
    "confluent-kafka>=2.6,<3",
    "psycopg[binary]>=3.2,<4",
    "boto3>=1.35",
    "click>=8.1",
    "rich>=13",
    "matplotlib>=3.9",  # the per-frame VMAF plot in quality_report's metadata
    "bjontegaard==1.3.0",  # BD-rate (PCHIP) of the per-title ladder against the fixed one
    "pandas>=2.2,<3",  # ratings and training frames; pyspark 4.2 does not support pandas 3
    "scipy>=1.11",  # sparse interaction matrices for ALS
    "lightgbm>=4.5",  # the ranker
    "threadpoolctl>=3.1",  # one BLAS thread in `train`'s model steps (netflix_assets/train.py)
    "lleaves>=1.3",  # compiles the ranker for serving (10x LightGBM's predict on 500 rows)
    "llvmlite>=0.43,<0.45",  # lleaves 1.3 uses the legacy pass manager, removed in llvmlite 0.45
    "torch>=2.5",  # NCF; PyPI's wheel brings CUDA libraries (about 3 GB) and runs on CPU too
    "fastapi>=0.115",  # the recommendation service
    "pyjwt>=2.9",  # its bearer-token auth
    "prometheus-client>=0.21",  # its /metrics
    "httpx>=0.27",  # FastAPI's test client and the serving benchmark's load generator
    "argon2-cffi>=23.1",  # the web app's password hashes (argon2id)
    "itsdangerous>=2.2",  # its signed session cookie
    "python-multipart>=0.0.9",  # its sign-in form
    "jinja2>=3.1",  # its server-rendered pages
    "fastjsonschema>=2.20",  # its /v1/events validation (5 us an event; jsonschema: 400)
]

DEV = [
    "pytest>=8",
    "pytest-timeout>=2.3",
    "ruff>=0.8",
    "moto[server]>=5",
    "aiohttp>=3.10",
    "playwright>=1.48",  # browser tests drive Debian's chromium (executable_path, no download)
    "implicit==0.7.2",  # benchmarks/recs_bench.py --implicit: the tuned textbook ALS baseline
]

setup(
    name="netflix-assets",
    version="0.1.0",
    description="Dagster data-asset platform for a video-streaming service",
    python_requires=">=3.11,<3.13",
    packages=find_packages(
        include=[
            "netflix_assets*",
            "assets*",
            "resources*",
            "sensors*",
            "spark_jobs*",
            "streaming*",
            "schema*",
        ]
    ),
    package_data={
        "netflix_assets.stack": ["poms/*"],
        "netflix_assets.web": ["templates/*.html", "static/*"],
        "schema": ["*.sql", "*.json"],
    },
    install_requires=CORE,
    extras_require={"dev": DEV},
    entry_points={"console_scripts": ["netflix-assets=netflix_assets.cli:main"]},
)
