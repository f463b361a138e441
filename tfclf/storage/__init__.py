"""What tfclf keeps on disk: files and folders written atomically, and the run folder's layout,
lock, resume and records."""
