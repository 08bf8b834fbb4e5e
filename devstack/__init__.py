"""The development stack: what `make run` and the tests start on one machine — a process supervisor, embedded
PostgreSQL and Redis, a local S3 and a local FCM stand-in. Not configuration, and not part of the production
image (the Dockerfile copies only the product packages)."""
