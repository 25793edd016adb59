-- How an import keyed its samples' origins. 1: sha256 of (record bytes, record number,
-- generation) cut to 16 bytes. 2 (from this migration on): the record number (5 bytes, big
-- endian), the generation (1 byte) and 10 bytes of that hash, so that one import's origins
-- arrive in key order and the UNIQUE index grows at its end instead of touching a random page
-- per sample (800k R1-sized rows: 26.8 GB written, 100 s; with ordered keys 13.9 GB, 60 s).
-- A store holding scheme-1 imports also checks each new sample's scheme-1 origin, so a file
-- imported, or an import killed, before the upgrade and run again after it adds nothing twice.
ALTER TABLE imports ADD COLUMN origin_scheme INTEGER NOT NULL DEFAULT 2;
UPDATE imports SET origin_scheme = 1;
