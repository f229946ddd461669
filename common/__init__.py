"""What `study`, `trainables` and `analysis` share, and nothing else: user-facing errors, typed
helpers, where data and caches live, atomic writes, and the record contract (`common.records`)
between the trials that write run records and the analysis that reads them."""
