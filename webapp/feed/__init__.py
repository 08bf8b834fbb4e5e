"""The home feed: the signed-in athlete's own and followed athletes' activities and posts, newest first."""
