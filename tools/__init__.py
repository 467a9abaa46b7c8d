"""Maintenance tools of the book: notebook guards and the re-execute tool (not part of `lib`)."""
