"""Dataset readers and the procedural driving world."""
