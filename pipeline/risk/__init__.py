"""The risk engine: exposure limits per strategy and loss/drawdown breakers (docs/risk.md).

limits.py    a strategy's rules: topology defaults, its overrides, run-time changes
prices.py    marks: a mid price per asset in the quote asset, from pool states, with ages
book.py      RiskBook: positions, open intents, daily notional and P&L per strategy (pure)
checks.py    the exposure checks of one intent against a book and its limits (pure)
breakers.py  NORMAL -> REDUCING -> HALTED from loss and drawdown (pure)
feed.py      the book fed by every partition of the intent, plan and execution topics
engine.py    what the validate stage holds: book + own approvals + marks + breakers loop
"""
