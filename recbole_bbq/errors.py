"""The plugin's own error for unusable configuration, in the bottom layer so that every layer
(the model lookup in ``utils`` included) can raise it without importing ``config``."""


class ConfigError(ValueError):
    """A configuration file or value that cannot be used; the message names the culprit."""
