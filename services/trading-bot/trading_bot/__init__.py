"""Paper-trading bot: a seeded simulated market, an MA-crossover strategy, durable state."""

__version__ = "0.1.0"
