"""Ways of running the pipeline over many captures or in time: batch (process pool or Dask) and replay.
May import every stage below (base to report); the CLI sits above."""
