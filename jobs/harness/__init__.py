"""The timing harness: the protocol of an infer run (``passes``) and the threads that overlap the
harness's own work with the backend's compute (``overlap``)."""
