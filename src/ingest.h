/* ingest: placeholder */
