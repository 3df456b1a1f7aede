"""Infrastructure: the only code that talks to OpenAI and to the database."""
