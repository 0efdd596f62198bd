"""Strategy Execution Platform: trading intents in, executed and audited trades out."""

__version__ = "0.1.0"
