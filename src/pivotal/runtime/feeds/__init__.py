"""Feed implementations: historical (the market store / candle files); live feeds come with the stream layer."""
