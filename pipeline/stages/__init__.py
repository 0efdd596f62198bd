"""The six stages. Each module holds a pure function and the processor the agent calls."""
