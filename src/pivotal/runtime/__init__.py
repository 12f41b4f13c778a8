"""The trading runtime: feeds of timestamped market events, replay sessions, the node that drives the event engine
with them, and the write-ahead journal that makes a node restartable (docs/runtime.md)."""
