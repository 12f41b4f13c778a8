"""Market structure: Williams recursive swing pivots (L1..L5), trend lines, bounds, floor pivots."""
