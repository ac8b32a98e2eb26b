"""Code shared by the API and the worker: settings, keys, job records, storage, images."""
