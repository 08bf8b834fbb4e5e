"""Photos and videos: upload requests, the S3 events that start processing, the photo and video chains, who may
see what, and deleting the objects (docs/media.md)."""
