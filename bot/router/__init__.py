"""The model router: picks the model, records every attempt, prices the answer."""
