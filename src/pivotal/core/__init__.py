"""The vocabulary every layer shares: sides, actions, pivot kinds, exit reasons, ids, clocks, timeframes, errors and
return statistics. It imports nothing from the rest of the package, so anything may import it."""
