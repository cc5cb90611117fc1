-- 0006: operators' data sets. The uploaded file lives in the blob store under sha256 (the data
-- set's identity: the same bytes uploaded twice are one data set); info is the validator's
-- summary (shapes, classes, counts per class, normalization) as JSON. A model that trains on one
-- names its id in models.dataset.
CREATE TABLE datasets (
  id          TEXT PRIMARY KEY NOT NULL,      -- "ds-" + the first 16 hex chars of sha256
  name        TEXT NOT NULL,
  sha256      TEXT NOT NULL UNIQUE,
  size_bytes  INTEGER NOT NULL,
  info        TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  created_by  TEXT NOT NULL
) STRICT;
CREATE INDEX models_dataset ON models (dataset);
