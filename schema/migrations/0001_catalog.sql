-- 0001: the video catalog, what is published and how good it is (the video pipeline's
-- published_title writes it). Written before migrations were versioned, so every statement is
-- idempotent: a database that already has these tables takes this as its baseline unchanged.
CREATE SCHEMA IF NOT EXISTS catalog;

CREATE TABLE IF NOT EXISTS catalog.titles (
    title_id    text PRIMARY KEY,
    title       text NOT NULL,
    status      text NOT NULL DEFAULT 'uploaded',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS catalog.title_versions (
    title_id      text NOT NULL REFERENCES catalog.titles (title_id),
    version       text NOT NULL,
    source_sha256 text NOT NULL,
    published_at  timestamptz NOT NULL DEFAULT now(),
    playback_url  text NOT NULL,
    manifest_uri  text NOT NULL,
    dash_uri      text,
    PRIMARY KEY (title_id, version)
);

CREATE TABLE IF NOT EXISTS catalog.renditions (
    title_id       text NOT NULL,
    version        text NOT NULL,
    rung           text NOT NULL,
    codec          text NOT NULL,
    width          integer NOT NULL,
    height         integer NOT NULL,
    bitrate_kbps   integer NOT NULL,
    peak_kbps      integer,
    avg_kbps       integer,
    codecs_string  text,
    uri            text NOT NULL,
    PRIMARY KEY (title_id, version, rung),
    FOREIGN KEY (title_id, version) REFERENCES catalog.title_versions (title_id, version)
);

CREATE TABLE IF NOT EXISTS catalog.quality (
    title_id       text NOT NULL,
    version        text NOT NULL,
    rung           text NOT NULL,
    vmaf_mean      double precision,
    vmaf_harmonic  double precision,
    vmaf_p1        double precision,
    vmaf_min       double precision,
    psnr           double precision,
    ssim           double precision,
    PRIMARY KEY (title_id, version, rung),
    FOREIGN KEY (title_id, version, rung) REFERENCES catalog.renditions (title_id, version, rung)
);

CREATE TABLE IF NOT EXISTS catalog.manifests (
    title_id      text NOT NULL,
    version       text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('hls', 'dash')),
    uri           text NOT NULL,
    content_type  text NOT NULL,
    variant_count integer NOT NULL,
    duration_s    double precision NOT NULL,
    PRIMARY KEY (title_id, version, kind),
    FOREIGN KEY (title_id, version) REFERENCES catalog.title_versions (title_id, version)
);
