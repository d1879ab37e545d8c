"""The video pipeline's pure cores: probe, ladder, encode, quality, packaging, upload.

Nothing here imports Dagster; each module takes paths and plain values and returns records, so
it is tested on its own and the assets in assets/video.py stay thin.
"""
